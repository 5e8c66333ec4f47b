"""The pg_node_tree reader: tokens, escapes, and its refusal of malformed text."""

from __future__ import annotations

import pytest

from connectors.postgres.mapping import distance_of, parse_provenance
from connectors.postgres.nodetree import NodeTreeError, Str, column_sources, parse


def test_nodes_lists_strings_and_escapes() -> None:
    tree = parse(
        r'({ALIAS :aliasname zip\ code :colnames ("a" "b\ c" "" "x\"y") :n <> :ints (i 1 2)'
        r" :empty (b) :neg -1 :name \:colon :k :v})"
    )
    [node] = tree
    assert node["_node"] == "ALIAS"
    assert node["aliasname"] == "zip code"
    assert node["colnames"] == ["a", "b c", "", 'x"y']
    assert all(isinstance(s, Str) for s in node["colnames"])
    assert node["n"] is None
    assert node["ints"] == ["1", "2"]
    assert node["empty"] == []
    assert node["neg"] == "-1"
    assert node["name"] == ":colon"
    # A value right after a field name is a value even when it looks like a name.
    assert node["k"] == ":v"


def test_const_values_with_several_tokens() -> None:
    node = parse("{CONST :consttype 23 :constvalue 4 [ 1 0 0 0 0 0 0 0 ] :location 7}")
    assert node["constvalue"] == ["4", "[", "1", "0", "0", "0", "0", "0", "0", "0", "]"]
    assert node["location"] == "7"


@pytest.mark.parametrize("text", ["{A :x 1", "(1 2", "{A :x 1}}", "{A 1}", "", "{A :x 1} {B :y 2}"])
def test_malformed_text_is_refused(text: str) -> None:
    with pytest.raises(NodeTreeError):
        parse(text)


def test_column_sources_needs_a_query() -> None:
    with pytest.raises(NodeTreeError):
        column_sources("({ALIAS :aliasname x})")


def test_column_sources_follows_vars_to_relations() -> None:
    query = (
        "({QUERY :rtable ({RANGETBLENTRY :rtekind 0 :relid 42})"
        " :targetList ({TARGETENTRY :expr {VAR :varno 1 :varattno 3 :varlevelsup 0}"
        " :resno 1 :resname total :resjunk false}"
        " {TARGETENTRY :expr {VAR :varno 1 :varattno 2 :varlevelsup 0}"
        " :resno 2 :resname hidden :resjunk true})})"
    )
    assert column_sources(query) == {"total": {(42, 3)}}


def test_distance_and_provenance_helpers() -> None:
    assert distance_of("vector_cosine_ops") == "cosine"
    assert distance_of("halfvec_l2_ops") == "l2"
    assert distance_of("sparsevec_ip_ops") == "inner_product"
    assert distance_of("bit_hamming_ops") == "hamming"
    assert distance_of("text_ops") is None
    assert parse_provenance("embedding_model=m@2, embedding_source=s3://b/k") == {
        "embedding_model": "m",
        "embedding_revision": "2",
        "embedding_source": "s3://b/k",
    }
    assert parse_provenance("EMBEDDING_MODEL=org/m embedding_revision=r1") == {
        "embedding_model": "org/m",
        "embedding_revision": "r1",
    }
    assert parse_provenance("just a comment") == {}
