"""`serbench corpora | manifest | demo-corpus | fetch`.

Only click is imported with this module; the corpora, pandas and rich load inside the commands.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from serbench.cli import common
from serbench.cli.common import corpus_option, emotions_option, root_option, split_list

if TYPE_CHECKING:
    from serbench import corpora


@click.command("corpora")
def corpora_cmd() -> None:
    """List the supported corpora: language, speakers, emotions, layout, where to get them."""
    from serbench import corpora

    for info in corpora.list_corpora():
        common.console.print(f"[bold]{info.name}[/bold]  {info.title}")
        common.console.print(f"  language: {info.language}   speakers: {info.speakers}")
        common.console.print(f"  emotions: {', '.join(info.emotions)}")
        common.console.print(f"  layout:   {info.layout}", soft_wrap=True)
        common.console.print(f"  obtain:   {info.obtain}", soft_wrap=True)
        common.console.print()


def print_summary(scan: corpora.CorpusScan) -> None:
    from rich.table import Table

    from serbench import corpora
    from serbench.corpora.base import check_expected_count

    s = scan.summary()
    common.console.print(f"[bold]{s['corpus']}[/bold] at {s['root']}")
    minutes = s["total_duration_s"] / 60
    common.console.print(f"  utterances: {s['utterances']}   speakers: {s['speakers']}   "
                  f"total duration: {minutes:.1f} min   sample rates: {', '.join(map(str, s['sample_rates']))} Hz")
    table = Table(title="emotions", show_header=True)
    table.add_column("emotion")
    table.add_column("utterances", justify="right")
    for emotion, n in s["emotions"].items():
        table.add_row(emotion, str(n))
    common.console.print(table)
    speakers = scan.manifest.groupby("speaker", sort=True).size()
    common.console.print("  per speaker: " + ", ".join(f"{k} {v}" for k, v in speakers.items()))
    note = check_expected_count(scan, corpora.expected_count(scan.corpus))
    if note:
        common.console.print(f"  [yellow]note:[/yellow] {note}")
    if s["skipped"]:
        common.console.print(f"  [yellow]skipped {len(s['skipped'])} file(s) that do not fit the layout:[/yellow]")
        for item in s["skipped"][:50]:
            common.console.print(f"    {item['path']}: {item['reason']}", markup=False, highlight=False)
        if len(s["skipped"]) > 50:
            common.console.print(f"    ... and {len(s['skipped']) - 50} more (use --out to save the manifest)")
    else:
        common.console.print("  skipped: none")


def write_manifest(scan: corpora.CorpusScan, out: Path, overwrite: bool = True) -> None:
    from serbench.io import atomic_write, check_output_file

    out = check_output_file(out, inputs=scan.manifest["path"].astype(str), overwrite=overwrite,
                            suffixes=(".csv", ".parquet"))
    suffix = out.suffix.lower()
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
@click.option("--overwrite", is_flag=True, help="Replace the file --out if it exists.")
def manifest_cmd(corpus: str, root: str, emotions: str | None, out: Path | None, strict: bool,
                 overwrite: bool) -> None:
    """Parse a corpus folder into the manifest and print its summary."""
    from serbench import corpora
    from serbench.io import check_output_file

    if out is not None:   # before the scan: a refused --out should not cost a corpus scan
        check_output_file(out, overwrite=overwrite, suffixes=(".csv", ".parquet"))
    scan = corpora.scan(corpus, root, emotions=split_list(emotions), strict=strict)
    print_summary(scan)
    if out is not None:
        write_manifest(scan, out, overwrite=overwrite)
        common.console.print(f"  manifest written to {out}")


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
    with Progress(console=common.err_console, transient=True, disable=not common.err_console.is_terminal) as bar:
        task = bar.add_task("synthesizing", total=None)
        result = synthesize_demo_corpus(to, progress=lambda done, total: bar.update(task, completed=done, total=total),
                                        **kwargs)
    common.console.print(f"demo corpus at {result.root}: {result.n_utterances} utterances "
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
                  console=common.err_console, transient=True, disable=not common.err_console.is_terminal) as bar:
        task = bar.add_task(f"downloading {corpus}", total=None)
        result = fetch(corpus, to, url=url, sha256=sha256, timeout=timeout,
                       progress=lambda done, total: bar.update(task, completed=done, total=total))
    common.console.print(result.message)
    for warning in result.warnings:
        common.console.print(f"[yellow]warning:[/yellow] {warning}")


COMMANDS = [corpora_cmd, manifest_cmd, demo_corpus_cmd, fetch_cmd]
