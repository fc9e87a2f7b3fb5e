import os
import stat

import pytest

from serbench.io import (
    OutsideError,
    atomic_write,
    atomic_write_bytes,
    atomic_write_text,
    ensure_inside,
    rmtree_inside,
    unlink_inside,
)


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "old")
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_failure_leaves_old_file_and_no_temp(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "old")
    with pytest.raises(OSError):
        with atomic_write(path, "wb") as f:
            f.write(b"half")
            raise OSError(28, "No space left on device")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_mode_follows_umask_not_0600(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


# --- confinement: nothing written or deleted outside the folder we own ---------------------------

@pytest.fixture
def owned(tmp_path):
    """``(root, outside)``: root/linked -> outside (a folder elsewhere holding user data)."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "mine.txt").write_text("user data")
    (root / "linked").symlink_to(outside)
    return root, outside


def test_ensure_inside_follows_links(owned, tmp_path):
    root, outside = owned
    assert ensure_inside(root / "a" / "new.txt", root) == (root / "a" / "new.txt").resolve()
    assert ensure_inside(root, root) == root.resolve()
    for bad in (root / "linked" / "mine.txt", root / "linked" / "new" / "x.txt", root / ".." / "outside"):
        with pytest.raises(OutsideError, match="outside"):
            ensure_inside(bad, root)
    (root / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutsideError):
        ensure_inside(root / "dangling" / "x.txt", root)
    (root / "inner").mkdir()
    (root / "alias").symlink_to(root / "inner")  # a link that stays inside is fine
    assert ensure_inside(root / "alias" / "x.txt", root) == (root / "inner" / "x.txt").resolve()
    via_link = tmp_path / "root-link"
    via_link.symlink_to(root)  # a root that is itself a link is the user's choice
    assert ensure_inside(via_link / "x.txt", via_link) == (root / "x.txt").resolve()


def test_atomic_write_inside_refuses_a_linked_folder(owned):
    root, outside = owned
    with pytest.raises(OutsideError, match="linked"):
        atomic_write_bytes(root / "linked" / "sub" / "new.wav", b"x", inside=root)
    assert sorted(p.name for p in outside.iterdir()) == ["mine.txt"]  # nothing created there
    atomic_write_bytes(root / "sub" / "new.wav", b"x", inside=root)
    assert (root / "sub" / "new.wav").read_bytes() == b"x"


def test_unlink_and_rmtree_inside_refuse_links_out(owned):
    root, outside = owned
    (root / "file-link.txt").symlink_to(outside / "mine.txt")
    with pytest.raises(OutsideError):
        unlink_inside(root / "linked" / "mine.txt", root)
    with pytest.raises(OutsideError):
        unlink_inside(root / "file-link.txt", root)
    with pytest.raises(OutsideError, match="is a link"):
        rmtree_inside(root / "linked", root)
    with pytest.raises(OutsideError):
        rmtree_inside(outside, root)
    assert (outside / "mine.txt").read_text() == "user data"
    (root / "tree" / "deep").mkdir(parents=True)
    (root / "tree" / "deep" / "out").symlink_to(outside)  # a link inside the tree is removed, not followed
    rmtree_inside(root / "tree", root)
    assert not (root / "tree").exists() and (outside / "mine.txt").read_text() == "user data"
    unlink_inside(root / "gone.txt", root)  # missing is fine
