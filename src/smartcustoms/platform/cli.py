"""Platform commands: serve, db upgrade, users and tokens.

What they print for people is in the reader's language (`smartcustoms --lang`, `SMARTCUSTOMS_LANG`, then `LANG`);
tokens are printed as they are.
"""

from __future__ import annotations

import typer

from smartcustoms.platform import auth, i18n
from smartcustoms.platform.db import unit_of_work
from smartcustoms.platform.i18n import t
from smartcustoms.platform.migrate import upgrade

db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
users_app = typer.Typer(no_args_is_help=True, help="Users, roles and API tokens.")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the newest revision of every slice."""
    upgrade()
    typer.echo(i18n.say(t("database schema is up to date")))


@users_app.command("add")
def users_add(
    username: str,
    role: str = typer.Option(..., help="trader, broker, carrier, officer, analyst, agency, partner or admin"),
    party_id: str | None = typer.Option(
        None, help="Party the user acts for (trader/broker TIN, carrier code, agency code)"
    ),
    name: str | None = typer.Option(None, help="Display name"),
    password: str | None = typer.Option(None, help="Console password (omit for API-only users)"),
    language: str = typer.Option("en", help="Preferred language: en or zh-Hant"),
    token: bool = typer.Option(True, help="Issue an API token and print it once"),
) -> None:
    """Add a user; prints its API token once (only its hash is stored)."""
    with unit_of_work() as session:
        user = auth.create_user(
            session, username, role, display_name=name, party_id=party_id, password=password, language=language
        )
        clear = auth.issue_token(session, user) if token else None
    typer.echo(i18n.say(t("user {username} ({role}) created", username=username, role=role)))
    if clear:
        typer.echo(i18n.say(t("token: {token}", token=clear)))


@users_app.command("token")
def users_token(username: str, label: str = typer.Option("api")) -> None:
    """Issue another API token for an existing user."""
    with unit_of_work() as session:
        clear = auth.issue_token(session, auth.find_user(session, username), label=label)
    typer.echo(clear)


@users_app.command("revoke")
def users_revoke(username: str) -> None:
    """Revoke every token of a user."""
    with unit_of_work() as session:
        n = auth.revoke_tokens(session, username)
    typer.echo(i18n.say(t("{count} token(s) revoked", count=n)))


def serve(
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000),
    workers: int = typer.Option(1, help="Worker processes"),
) -> None:
    """Serve the API (OpenAPI at /docs) and the web console."""
    import os

    import uvicorn

    os.environ.setdefault("SMARTCUSTOMS_WARM_START", "1")  # inherited by every worker process
    from smartcustoms.platform.settings import get_settings

    get_settings.cache_clear()
    uvicorn.run("smartcustoms.api:create_app", factory=True, host=host, port=port, workers=workers, log_level="info")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(db_app, name="db")
    app.add_typer(users_app, name="users")
