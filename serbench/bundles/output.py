"""Writing prediction tables: atomically, as CSV, Parquet or JSON, whole or streamed batch by batch.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from serbench.bundles.options import PredictError, output_format

if TYPE_CHECKING:
    import pandas as pd

#: What the functions here take as ``model``: a :class:`serbench.bundles.model.Model` (not imported:
#: model.py imports the prediction modules).


def write_table(df: pd.DataFrame, out: str | Path, fmt: str | None = None, *, overwrite: bool = True) -> Path:
    """Write the predictions atomically as CSV, Parquet or JSON (a list of row objects), by ``out``'s suffix.

    Without ``overwrite`` an existing file is refused (:class:`PredictError`).
    """
    import io

    from serbench.io import atomic_write_bytes

    out = Path(out).expanduser()
    if out.is_dir():
        raise PredictError(f"--out {out}: is a folder; give a file name, e.g. {out / 'predictions.csv'}")
    fmt = output_format(out, fmt)
    if not overwrite and (out.exists() or out.is_symlink()):
        raise PredictError(f"--out {out}: already exists; give --overwrite to replace it, or another name")
    frame = df.copy()
    frame.attrs = {}
    if fmt == "csv":
        data = frame.to_csv(index=False).encode("utf-8")
    elif fmt == "json":
        import json

        # json, not DataFrame.to_json: that escapes every '/' of the file paths.
        records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        data = (json.dumps(records, indent=1, allow_nan=False) + "\n").encode("utf-8")
    else:
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        data = buf.getvalue()
    atomic_write_bytes(out, data)
    return out


class TableWriter:
    """Writes a prediction table to ``out`` frame by frame, as :func:`write_table` would write it whole
    (CSV and JSON byte for byte; Parquet one row group per frame): into a temp file beside ``out``,
    renamed into place by :meth:`close` (an interrupted run leaves no half table). Use as a context
    manager; a refused ``out`` (a folder, an existing file without ``overwrite``) is refused at once.
    """

    def __init__(self, out: str | Path, fmt: str | None = None, *, overwrite: bool = True) -> None:
        out = Path(out).expanduser()
        if out.is_dir():
            raise PredictError(f"--out {out}: is a folder; give a file name, e.g. {out / 'predictions.csv'}")
        self.fmt = output_format(out, fmt)
        if not overwrite and (out.exists() or out.is_symlink()):
            raise PredictError(f"--out {out}: already exists; give --overwrite to replace it, or another name")
        self.out, self.rows = out, 0
        self._cm: Any = None
        self._file: Any = None
        self._parquet: Any = None

    def __enter__(self) -> "TableWriter":
        from serbench.io import atomic_write

        self._cm = atomic_write(self.out, "wb")
        self._file = self._cm.__enter__()
        return self

    def write(self, df: pd.DataFrame) -> None:
        """Append the rows of ``df`` (the same columns every time)."""
        frame = df.copy()
        frame.attrs = {}
        if self.fmt == "csv":
            self._file.write(frame.to_csv(index=False, header=self.rows == 0).encode("utf-8"))
        elif self.fmt == "json":
            import json
            import textwrap

            records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
            # json.dumps(all_records, indent=1), one record at a time
            text = ",\n".join(textwrap.indent(json.dumps(r, indent=1, allow_nan=False), " ") for r in records)
            if text:
                self._file.write((("[\n" if self.rows == 0 else ",\n") + text).encode("utf-8"))
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            if self._parquet is None:
                self._schema = _arrow_schema(frame)
                self._parquet = pq.ParquetWriter(self._file, self._schema)
            self._parquet.write_table(pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False))
        self.rows += len(frame)

    def __exit__(self, *exc: Any) -> None:
        try:
            if exc[0] is None:
                if self.fmt == "json":
                    self._file.write(b"[]\n" if self.rows == 0 else b"\n]\n")
                elif self.fmt == "csv" and self.rows == 0:
                    pass
                elif self.fmt == "parquet" and self._parquet is None:
                    raise PredictError(f"--out {self.out}: no rows to write")
            if self._parquet is not None:
                self._parquet.close()
        finally:
            self._cm.__exit__(*exc)


def _arrow_schema(frame: pd.DataFrame) -> Any:
    """The Parquet schema of a prediction table: text, flags and numbers, whatever the first frame holds
    (a first frame of failed rows has no emotion, yet the column is text)."""
    import pyarrow as pa

    fields = []
    for col in frame.columns:
        if col == "batch_stable":
            typ = pa.bool_()
        elif col in ("file", "speaker", "utterance_id", "true", "segment", "emotion", "status", "error"):
            typ = pa.string()
        else:
            typ = pa.float64()
        fields.append(pa.field(col, typ))
    return pa.schema(fields)
