"""The `steward` command: one root group, subcommands imported only when run.

`steward --help` imports click and this module only; each subcommand's module
(and its heavy dependencies: SQLAlchemy, qdrant-client, psycopg) is imported when
that subcommand is used. Commands of the upper layers are named here by string,
so this module does not import them.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from catalog import __version__

if TYPE_CHECKING:
    from catalog.db import Store

#: name -> "module:attribute" of each subcommand, in help order.
COMMANDS: dict[str, str] = {
    "init": "catalog.commands:init",
    "assets": "catalog.commands:assets",
    "show": "catalog.commands:show",
    "history": "catalog.commands:history",
    "diff": "catalog.commands:diff",
    "scan": "connectors.cli:scan",
    "features": "connectors.features_cli:features",
    "lineage": "lineage.checks_cli:lineage",
    "check": "lineage.checks_cli:check",
    "findings": "lineage.checks_cli:findings",
    "demo": "reports.demo_cli:demo",
    "ingest": "lineage.cli:ingest",
    "gc": "lineage.retention_cli:gc",
    "serve": "reports.serve_cli:serve",
    "models": "catalog.embeddings_cli:models",
    "report": "reports.cli:report",
}

#: One-line help of each subcommand, so `steward --help` imports nothing more.
SHORT_HELP: dict[str, str] = {
    "init": "Create or upgrade the catalog.",
    "assets": "List the assets in the catalog.",
    "show": "Show one asset: fields, properties, lineage.",
    "history": "List an asset's versions with their diffs.",
    "diff": "Compare two versions of an asset.",
    "scan": "Register and version the assets of a source (Postgres, Qdrant, ...).",
    "features": "Record offline and online samples of feature values.",
    "lineage": "Walk the lineage graph: upstream, downstream, path.",
    "check": "Run the governance rules; exit 1 on findings (for CI).",
    "findings": "List the findings of the last check.",
    "demo": "Build a small AI stack and run steward over it end to end.",
    "ingest": "Ingest OpenLineage events from files (JSON, NDJSON, gzip) or stdin.",
    "gc": "Drop old raw OpenLineage events, keeping a period or a size.",
    "serve": "Receive OpenLineage events over HTTP (Marquez-compatible API).",
    "models": "Register embedding models, the revision in use, and what they built.",
    "report": "Write the lineage and governance report as one self-contained HTML file.",
}

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"

EXIT_CODES = """\b
Exit codes:
  0    success (also `steward serve` stopped by Ctrl-C or SIGTERM)
  1    `steward check` found unacknowledged findings at or above --fail-on
  2    error: bad input or usage, unknown asset, an empty catalog given to
       `steward check`, unreachable catalog or source, a file that cannot be
       written, a port that cannot be listened on; one line on stderr
  130  interrupted (Ctrl-C) before the command finished
"""


class StewardCLIError(click.ClickException):
    """A StewardError shown as one line on stderr, exit code 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        from catalog.output import safe
        from catalog.secrets import mask_message

        click.echo(f"Error: {safe(mask_message(self.format_message()), lines=False)}", err=True)


class Interrupted(StewardCLIError):
    """Ctrl-C before the command finished: exit code 130, as a shell reports SIGINT."""

    exit_code = 130


@dataclass
class AppContext:
    """What every subcommand gets: settings, and the catalog opened on demand."""

    catalog_option: str | None = None
    quiet: bool = False
    _store: Store | None = field(default=None, repr=False)
    _told: bool = field(default=False, repr=False)

    def store(self) -> Store:
        if self._store is None:
            from catalog.config import load_settings
            from catalog.db import Store

            settings = load_settings(self.catalog_option)
            self._store = Store(settings.catalog_url)
        return self._store

    def reading_store(self) -> Store:
        """The catalog for a command that reads it: says on stderr when it is new or empty.

        A command pointed at the wrong directory (or the wrong URL) then says
        so instead of answering from an empty catalog as if all were well.
        """
        store = self.store()
        if not self._told:
            self._told = True
            state = store.emptiness()
            if state is not None:
                from catalog.output import info

                info(
                    f"note: catalog {store.shown_url} {state} "
                    "(scan a source or ingest events first, or give --catalog)"
                )
        return store

    def close(self) -> None:
        if self._store is not None:
            self._store.dispose()


class LazyGroup(click.Group):
    """click's documented lazy-loading group, plus one-place error translation."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        import os

        from catalog.secrets import remember_given

        remember_given(args, dict(os.environ))
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command = getattr(importlib.import_module(module_name), attr)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The short help is kept here so that `steward --help` imports no subcommand.
        rows = [(name, SHORT_HELP.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            close = difflib.get_close_matches(name, list(COMMANDS), n=3, cutoff=0.6)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            ctx.fail(f"No such command {name!r}.{hint}")
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        from sqlalchemy.exc import DatabaseError, DBAPIError

        from catalog.errors import StewardError

        try:
            return super().invoke(ctx)
        except StewardError as err:
            raise StewardCLIError(str(err)) from err
        except DBAPIError as err:
            # A database error no command expected: one line, never a traceback.
            from catalog.db import is_write, write_failure

            if isinstance(err, DatabaseError) and not is_write(err):
                # a corrupt or vanished catalog, mid-command
                orig = str(getattr(err, "orig", None) or err).strip().splitlines()
                raise StewardCLIError(
                    f"the catalog cannot be read: {orig[0] if orig else type(err).__name__}"
                ) from err
            command = ctx.invoked_subcommand or ctx.info_name
            raise StewardCLIError(
                f"steward {command}: {write_failure(err)} (its transaction was rolled back)"
            ) from err
        except KeyboardInterrupt:
            raise Interrupted("interrupted") from None
        except OSError as err:  # a path that cannot be read or written, a full disk
            if isinstance(err, BrokenPipeError):
                raise
            name = f"{err.filename}: " if err.filename else ""
            raise StewardCLIError(f"{name}{err.strerror or err}") from err


@click.group(
    cls=LazyGroup, epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="steward")
@click.option(
    "--catalog",
    "catalog_url",
    metavar="URL",
    help="Catalog database URL (sqlite:///PATH, a PATH ending in .db, or "
    "postgresql://USER@HOST:PORT/DB). "
    "Default: $STEWARD_CATALOG_URL, then steward.toml, then sqlite:///steward.db.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or summaries on stderr.")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, catalog_url: str | None, quiet: bool, verbose: int) -> None:
    """steward: the metadata catalog and governance tool for AI data stacks.

    It registers and versions what lives in PostgreSQL, Qdrant and feature
    stores, takes OpenLineage events, and says what is stale, skewed or about
    to break. Assets are named by URI (NAMESPACE/NAME) or any unambiguous
    suffix of it, e.g. `shop.public.orders` or `orders`.
    """
    from catalog.secrets import MaskingFormatter, mask_log_records

    level = logging.WARNING - 10 * min(verbose, 2)
    root = logging.getLogger()
    ours = not root.handlers
    logging.basicConfig(level=level, format=LOG_FORMAT)
    # Credentials never reach a log: each record's message is masked when it is
    # made, and what our handler writes (tracebacks too) when it is written.
    mask_log_records()
    if ours:
        for handler in root.handlers:
            handler.setFormatter(MaskingFormatter(LOG_FORMAT))
    migration_log = logging.getLogger("alembic.runtime.migration")
    if verbose < 2:  # -v: the migrations applied, not Alembic's set-up on every connection
        migration_log.addFilter(_alembic_setup_lines)
    else:
        migration_log.removeFilter(_alembic_setup_lines)
    app = AppContext(catalog_option=catalog_url, quiet=quiet)
    ctx.obj = app
    ctx.call_on_close(app.close)


def _alembic_setup_lines(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(("Context impl", "Will assume"))


def main() -> None:
    code: Any = 0
    try:
        cli(prog_name="steward")
    except SystemExit as done:
        code = done.code
        raise
    finally:
        _flush_stdout(told=code not in (0, None))


def _flush_stdout(told: bool) -> None:
    """Data that cannot be written (stdout on a full disk, a closed pipe) is an error
    of one line and exit code 2 (a closed pipe: quietly), not a traceback at exit."""
    try:
        sys.stdout.flush()
    except OSError as err:
        # Python flushes again at exit: point stdout at nothing first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        if not told and not isinstance(err, BrokenPipeError):
            click.echo(f"Error: cannot write the output: {err.strerror or err}", err=True)
        raise SystemExit(2) from None
