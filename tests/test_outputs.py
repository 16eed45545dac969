"""procvid.outputs: atomic writes keep the usual file mode, and the "current" rule."""

import os

from procvid.outputs import Manifest, atomic_write, stamp


def test_atomic_write_gives_the_usual_mode_and_no_temporary_file(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    path = atomic_write(tmp_path / "sub" / "report.html", "<p>hi</p>")
    assert path.read_text() == "<p>hi</p>"
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # readable like any file the user creates
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]


def test_manifest_current_rule(tmp_path):
    out = tmp_path / "a.json"
    key = stamp("graph", ["input digest"], {"method": "precedence"})
    manifest = Manifest(tmp_path)
    assert not manifest.is_current(out, key)  # never recorded
    atomic_write(out, "{}")
    manifest.record(out, key)
    assert Manifest(tmp_path).is_current(out, key)  # read back from the file
    assert not Manifest(tmp_path).is_current(out, stamp("graph", ["other input"], {"method": "precedence"}))
    out.unlink()
    assert not Manifest(tmp_path).is_current(out, key)  # the output itself must exist
