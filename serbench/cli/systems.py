"""``serbench systems [NAME]``: the registered systems, and one system's settings with their profiles."""
from __future__ import annotations

import click


@click.command("systems")
@click.argument("name", required=False)
def systems_cmd(name: str | None) -> None:
    """List the registered systems, or NAME's settings (defaults per profile, what each means)."""
    from serbench.systems import registry
    from serbench.systems.settings import describe_settings

    if name is None:
        for s in registry.all_systems():
            click.echo(f"{s.name:<16} {s.kind:<9} {s.summary}")
        click.echo("\n`serbench systems NAME` shows a system's settings; change one with --set KEY=VALUE.")
        return
    system = registry.get(name)
    cls = system.settings_class
    profiles = list(cls.PROFILES)
    click.echo(f"{system.name} ({system.kind}): {system.summary}")
    if system.paper:
        click.echo(f"reference: {system.paper}")
    click.echo(f"stored as e.g. {system.stored_name(_example(system))}")
    rows = describe_settings(cls)
    width = max(len(k) for k, _, _ in rows)
    click.echo("\n" + f"{'setting':<{width}}  " + "  ".join(f"{p:>10}" for p in profiles) + "  meaning")
    for key, doc, values in rows:
        shown = [_fmt(values[p]) for p in profiles]
        option = cls.option_name(key)
        click.echo(f"{key:<{width}}  " + "  ".join(f"{v:>10}" for v in shown) + f"  {doc}"
                   + (f" ({option})" if not option.startswith("--set") else ""))
    grid = getattr(system, "hyper_parameter_grid", None)
    if grid is not None:
        # Chosen per fold by the speaker-grouped inner CV (UA); a choice on the grid's edge is warned about.
        click.echo("\nhyper-parameters chosen in each fold by a speaker-grouped inner CV (UA) from:")
        for key, values in grid().items():
            click.echo(f"  {key:<6} " + ", ".join(v if isinstance(v, str) else f"{v:g}" for v in values))


def _fmt(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return "-" if value is None else str(value)


def _example(system):
    import types

    values = {f: d.default for f, d in system.settings_class.fields().items()}
    values.update({"feature": "IS10", "segments": 3})
    return types.SimpleNamespace(**values)


COMMANDS = [systems_cmd]
