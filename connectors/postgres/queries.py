"""The catalog queries of one scan: a fixed handful, each over every relation at once.

Every query is parametrised by `schemas` (the oids of the schemas being
scanned) and reads all of their relations in one statement, so the number of
round trips does not grow with the number of tables. They run in one
REPEATABLE READ, READ ONLY transaction, so they see one consistent catalog.
"""

from __future__ import annotations

#: Relation kinds scanned: table, partitioned table, view, materialized view, foreign table.
RELKINDS = ["r", "p", "v", "m", "f"]

DATABASE = """
SELECT current_database() AS database,
       current_setting('server_version_num')::int AS server_version
"""

#: pgvector's types, by oid (none when the extension is not installed).
VECTOR_TYPES = """
SELECT t.oid, t.typname
FROM pg_type t
JOIN pg_depend d ON d.classid = 'pg_type'::regclass AND d.objid = t.oid
                AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
JOIN pg_extension e ON e.oid = d.refobjid
WHERE e.extname = 'vector' AND t.typname IN ('vector', 'halfvec', 'sparsevec')
"""

SCHEMAS = """
SELECT n.oid, n.nspname AS name, has_schema_privilege(n.oid, 'USAGE') AS usable
FROM pg_namespace n
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname !~ '^pg_(toast_)?temp_'
ORDER BY n.nspname
"""

RELATIONS = """
SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind, c.relispartition,
       pg_get_userbyid(c.relowner) AS owner,
       c.reltuples::float8 AS reltuples,
       CASE WHEN c.relkind IN ('r', 'm') THEN pg_total_relation_size(c.oid) END AS size_bytes,
       d.description,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) END AS view_definition,
       CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END AS partition_key,
       CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END AS partition_bound,
       i.inhparent AS parent_oid,
       s.srvname AS foreign_server
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_description d
       ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND c.relispartition
LEFT JOIN pg_foreign_table ft ON ft.ftrelid = c.oid
LEFT JOIN pg_foreign_server s ON s.oid = ft.ftserver
WHERE c.relnamespace = ANY(%(schemas)s) AND c.relkind = ANY(%(relkinds)s)
ORDER BY n.nspname, c.relname
"""

COLUMNS = """
SELECT a.attrelid AS oid, a.attnum, a.attname AS name,
       format_type(a.atttypid, a.atttypmod) AS type,
       a.atttypid AS type_oid, a.atttypmod AS typmod,
       a.attnotnull AS not_null,
       pg_get_expr(ad.adbin, ad.adrelid) AS default_expr,
       a.attidentity AS identity, a.attgenerated AS generated,
       d.description
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT JOIN pg_description d
       ON d.objoid = a.attrelid AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum
WHERE c.relnamespace = ANY(%(schemas)s) AND c.relkind = ANY(%(relkinds)s)
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

CONSTRAINTS = """
SELECT con.conrelid AS oid, con.conname AS name, con.contype AS type,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num
             ORDER BY k.ord) AS columns,
       fn.nspname AS ref_schema, fc.relname AS ref_table,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY AS k(num, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num
             ORDER BY k.ord) AS ref_columns,
       con.confupdtype AS on_update, con.confdeltype AS on_delete,
       pg_get_constraintdef(con.oid, true) AS definition
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
LEFT JOIN pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE c.relnamespace = ANY(%(schemas)s) AND c.relkind = ANY(%(relkinds)s)
  AND con.contype IN ('p', 'u', 'f', 'c', 'x')
ORDER BY con.conrelid, con.conname
"""

INDEXES = """
SELECT i.indrelid AS oid, ic.relname AS name, am.amname AS method,
       pg_get_indexdef(i.indexrelid) AS definition,
       ic.reloptions AS options,
       ARRAY(SELECT k.num FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(num, ord)
             WHERE k.ord <= i.indnkeyatts ORDER BY k.ord) AS keys,
       ARRAY(SELECT oc.opcname FROM unnest(i.indclass::oid[]) WITH ORDINALITY AS k(opc, ord)
             JOIN pg_opclass oc ON oc.oid = k.opc ORDER BY k.ord) AS opclasses
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_am am ON am.oid = ic.relam
WHERE c.relnamespace = ANY(%(schemas)s) AND c.relkind = ANY(%(relkinds)s)
ORDER BY i.indrelid, ic.relname
"""

#: What each view reads, table and column level, from the dependencies of its rule.
VIEW_DEPENDENCIES = """
SELECT DISTINCT r.ev_class AS view_oid, d.refobjid AS source_oid,
       sn.nspname AS source_schema, sc.relname AS source_name,
       d.refobjsubid AS attnum, a.attname
FROM pg_rewrite r
JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class
JOIN pg_class sc ON sc.oid = d.refobjid
JOIN pg_namespace sn ON sn.oid = sc.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                        AND d.refobjsubid > 0
WHERE r.ev_class = ANY(%(views)s) AND r.rulename = '_RETURN'
  AND sc.relkind = ANY(%(relkinds)s)
ORDER BY 1, 3, 4, 5
"""

#: The parsed query of each view, for column-level lineage (see `nodetree`).
VIEW_QUERIES = """
SELECT r.ev_class AS view_oid, r.ev_action::text AS action
FROM pg_rewrite r
WHERE r.ev_class = ANY(%(views)s) AND r.rulename = '_RETURN'
"""
