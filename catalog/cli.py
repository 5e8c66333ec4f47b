"""The `steward` command: one root group, subcommands imported only when run.

`steward --help` imports click and this module only; each subcommand's module
(and its heavy dependencies: networkx, qdrant-client, psycopg) is imported when
that subcommand is used. Commands of the upper layers are named here by string,
so this module does not import them.
"""

from __future__ import annotations

import importlib
import logging
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
    "serve": "Receive OpenLineage events over HTTP (Marquez-compatible API).",
    "models": "Register embedding models, the revision in use, and what they built.",
    "report": "Write the lineage and governance report as one self-contained HTML file.",
}

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"

EXIT_CODES = """\b
Exit codes:
  0  success
  1  `steward check` found findings at or above --fail-on
  2  error: bad input, unknown asset, unreachable catalog or source
"""


class StewardCLIError(click.ClickException):
    """A StewardError shown as one line on stderr, exit code 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        from catalog.output import safe
        from catalog.secrets import mask_message

        click.echo(f"Error: {safe(mask_message(self.format_message()), lines=False)}", err=True)


@dataclass
class AppContext:
    """What every subcommand gets: settings, and the catalog opened on demand."""

    catalog_option: str | None = None
    quiet: bool = False
    _store: Store | None = field(default=None, repr=False)

    def store(self) -> Store:
        if self._store is None:
            from catalog.config import load_settings
            from catalog.db import Store

            settings = load_settings(self.catalog_option)
            self._store = Store(settings.catalog_url)
        return self._store

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


@click.group(
    cls=LazyGroup, epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="steward")
@click.option(
    "--catalog",
    "catalog_url",
    metavar="URL",
    help="Catalog database URL (sqlite:///PATH or postgresql://USER@HOST:PORT/DB). "
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
    app = AppContext(catalog_option=catalog_url, quiet=quiet)
    ctx.obj = app
    ctx.call_on_close(app.close)


def main() -> None:
    cli(prog_name="steward")
