"""``serbench models`` (the self-supervised upstreams and where each is found) and ``serbench models fetch``.

Only click and the feature registry's upstream table are imported with this module; huggingface_hub
loads inside ``fetch``.
"""
from __future__ import annotations

import click

from serbench.features.ssl import UPSTREAMS, MODELS_ENV


def _use_model_dir(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--model-dir DIR``: the models root of this command and of the workers it starts."""
    from serbench.features.ssl import use_models_root

    use_models_root(value)
    return value


#: ``--model-dir``, for any command that reads an upstream (extract, models).
model_dir_option = click.option(
    "--model-dir", default=None, type=click.Path(file_okay=False), callback=_use_model_dir, expose_value=False,
    is_eager=True,
    help=f"Folder holding one Hugging Face folder per self-supervised upstream (default ${MODELS_ENV} or "
         "~/.local/share/serbench/models); read offline.")


@click.group("models", invoke_without_command=True)
@model_dir_option
@click.pass_context
def models_group(ctx: click.Context) -> None:
    """Self-supervised upstreams (feature sets): hub id, revision, licence, layers, input, local folder."""
    if ctx.invoked_subcommand is not None:
        return
    from serbench.features.ssl import local_status, models_root

    root = models_root()
    click.echo(f"models root {root}")
    width = max(len(u.name) for u in UPSTREAMS)
    for u in UPSTREAMS:
        status, folder = local_status(u, root)
        click.echo(f"{u.name:<{width}}  {u.hub_id} @ {u.revision}  {u.licence}  {u.layers} layers x {u.hidden}")
        click.echo(f"{'':<{width}}  input: {u.input}")
        click.echo(f"{'':<{width}}  {status if status != 'found' else 'found: ' + str(folder)}"
                   + ("" if status != "missing" else f": {folder} (`serbench models fetch {u.name}`)"))


@models_group.command("fetch")
@click.argument("name", type=click.Choice([u.name for u in UPSTREAMS], case_sensitive=False))
@click.option("--to", "to", default=None, type=click.Path(file_okay=False),
              help=f"Models root to download into (default ${MODELS_ENV} or ~/.local/share/serbench/models).")
def fetch_cmd(name: str, to: str | None) -> None:
    """Download upstream NAME at its pinned revision with huggingface_hub (needs a network)."""
    from serbench.features.ssl import fetch

    fetch(name, to, say=click.echo)


COMMANDS = [models_group]
