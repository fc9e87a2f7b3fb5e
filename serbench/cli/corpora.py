"""`serbench corpora | manifest | demo-corpus | fetch`."""
from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from serbench import corpora
from serbench.cli.common import console, corpus_option, emotions_option, err_console, root_option, split_list
from serbench.corpora.base import check_expected_count
from serbench.errors import SerbenchError


@click.command("corpora")
def corpora_cmd() -> None:
    """List the supported corpora: language, speakers, emotions, layout, where to get them."""
    for info in corpora.list_corpora():
        console.print(f"[bold]{info.name}[/bold]  {info.title}")
        console.print(f"  language: {info.language}   speakers: {info.speakers}")
        console.print(f"  emotions: {', '.join(info.emotions)}")
        console.print(f"  layout:   {info.layout}", soft_wrap=True)
        console.print(f"  obtain:   {info.obtain}", soft_wrap=True)
        console.print()


def print_summary(scan: corpora.CorpusScan) -> None:
    s = scan.summary()
    console.print(f"[bold]{s['corpus']}[/bold] at {s['root']}")
    minutes = s["total_duration_s"] / 60
    console.print(f"  utterances: {s['utterances']}   speakers: {s['speakers']}   "
                  f"total duration: {minutes:.1f} min   sample rates: {', '.join(map(str, s['sample_rates']))} Hz")
    table = Table(title="emotions", show_header=True)
    table.add_column("emotion")
    table.add_column("utterances", justify="right")
    for emotion, n in s["emotions"].items():
        table.add_row(emotion, str(n))
    console.print(table)
    speakers = scan.manifest.groupby("speaker", sort=True).size()
    console.print("  per speaker: " + ", ".join(f"{k} {v}" for k, v in speakers.items()))
    note = check_expected_count(scan, corpora.expected_count(scan.corpus))
    if note:
        console.print(f"  [yellow]note:[/yellow] {note}")
    if s["skipped"]:
        console.print(f"  [yellow]skipped {len(s['skipped'])} file(s) that do not fit the layout:[/yellow]")
        for item in s["skipped"][:50]:
            console.print(f"    {item['path']}: {item['reason']}")
        if len(s["skipped"]) > 50:
            console.print(f"    ... and {len(s['skipped']) - 50} more (use --out to save the manifest)")
    else:
        console.print("  skipped: none")


def write_manifest(scan: corpora.CorpusScan, out: Path) -> None:
    from serbench.io import atomic_write

    suffix = out.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise SerbenchError(f"--out {out}: use a .csv or .parquet file name")
    with atomic_write(out, "wb") as f:
        if suffix == ".csv":
            scan.manifest.to_csv(f, index=False)
        else:
            scan.manifest.to_parquet(f, index=False)


@click.command("manifest")
@corpus_option
@root_option
@emotions_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the manifest to FILE.csv or FILE.parquet.")
@click.option("--strict", is_flag=True, help="Fail if any file does not fit the layout.")
def manifest_cmd(corpus: str, root: str, emotions: str | None, out: Path | None, strict: bool) -> None:
    """Parse a corpus folder into the manifest and print its summary."""
    scan = corpora.scan(corpus, root, emotions=split_list(emotions), strict=strict)
    print_summary(scan)
    if out is not None:
        write_manifest(scan, out)
        console.print(f"  manifest written to {out}")


@click.command("demo-corpus")
@click.option("--to", "to", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the corpus into (created; re-running skips what exists).")
@click.option("--speakers", "n_speakers", default=None, type=int, help="Number of synthetic speakers.")
@click.option("--sentences", "n_sentences", default=None, type=int, help="Number of sentences per speaker and style.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--overwrite", is_flag=True, help="Replace a demo corpus made with other settings.")
def demo_corpus_cmd(to: Path, n_speakers: int | None, n_sentences: int | None, seed: int, overwrite: bool) -> None:
    """Synthesize the small multi-speaker acted-emotion demo corpus (eSpeak NG)."""
    from rich.progress import Progress

    from serbench.corpora.demo_synth import synthesize_demo_corpus

    kwargs: dict = {"seed": seed, "overwrite": overwrite}
    if n_speakers is not None:
        kwargs["n_speakers"] = n_speakers
    if n_sentences is not None:
        kwargs["n_sentences"] = n_sentences
    with Progress(console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        task = bar.add_task("synthesizing", total=None)
        result = synthesize_demo_corpus(to, progress=lambda done, total: bar.update(task, completed=done, total=total),
                                        **kwargs)
    console.print(f"demo corpus at {result.root}: {result.n_utterances} utterances "
                  f"({result.n_written} written, {result.n_skipped_existing} already there), "
                  f"{result.total_duration_s / 60:.1f} min of audio")


@click.command("fetch")
@click.argument("corpus")
@click.option("--to", "to", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to download and extract into.")
@click.option("--url", default=None,
              help="Download from this address (or use this local archive file) instead of the official one.")
@click.option("--timeout", default=60.0, show_default=True, type=float, help="Seconds without data before giving up.")
@click.option("--sha256", default=None, help="Refuse the archive unless its SHA-256 is this.")
def fetch_cmd(corpus: str, to: Path, url: str | None, timeout: float, sha256: str | None) -> None:
    """Download a freely downloadable corpus (EMO-DB), verify it and extract it safely."""
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    from serbench.corpora.fetch import fetch

    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(),
                  console=err_console, transient=True, disable=not err_console.is_terminal) as bar:
        task = bar.add_task(f"downloading {corpus}", total=None)
        result = fetch(corpus, to, url=url, sha256=sha256, timeout=timeout,
                       progress=lambda done, total: bar.update(task, completed=done, total=total))
    console.print(result.message)
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")


COMMANDS = [corpora_cmd, manifest_cmd, demo_corpus_cmd, fetch_cmd]
