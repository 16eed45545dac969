"""procvid.checkpoint: our models' one folder format (config.json + model.safetensors), a round trip
for each kind, one-line errors for folders that are not ours, and that nothing is ever unpickled."""

import json

import numpy as np
import pytest
import torch

from procvid.checkpoint import (CONFIG_NAME, FORMAT, WEIGHTS_NAME, load_pretrained, read_config,
                                save_pretrained)
from procvid.cli import main
from procvid.encoders.video_tiny import VideoTinyNet
from procvid.errors import ProcvidError
from procvid.graph.script import END
from procvid.graph.script_model import ScriptModel, ScriptVocab, build_network
from procvid.segment.sbd import NextEmbeddingPredictor


def _sbd(folder):
    torch.manual_seed(0)
    net = NextEmbeddingPredictor(dim=8, window=3, width=16, layers=1, heads=2)
    torch.nn.init.normal_(net.out.weight)  # not the all-zero start: the round trip must carry real values
    return net, net.save_pretrained(folder, "test footage", encoder="enc-x", sampling={"fps": 1.0})


def _script_model():
    torch.manual_seed(0)
    vocab = ScriptVocab({"t": [1, "b", 3], "u": ["x"]}, {"t": {1: "one", "b": "bee", 3: "three"}, "u": {"x": "ex"}},
                        {"t": "task t", "u": "task u"})
    config = {"dim": 16, "layers": 1, "heads": 2, "max_len": 8, "dropout": 0.0}
    return ScriptModel(build_network(vocab.size, **config), vocab, config)


def _assert_same_state(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k


def test_sbd_predictor_round_trip(tmp_path):
    net, folder = _sbd(tmp_path / "sbd")
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]  # no temporary files left
    loaded = NextEmbeddingPredictor.from_pretrained(folder)
    _assert_same_state(net.state_dict(), loaded.state_dict())
    config = json.loads((folder / CONFIG_NAME).read_text())
    assert config["format"] == FORMAT and config["format_version"] == 1 and config["kind"] == "sbd-predictor"
    assert config["domain"] == "test footage" and config["architecture"] == net.config
    assert loaded.info["encoder"] == "enc-x" and loaded.info["sampling"] == {"fps": 1.0}
    # the weights file inside the folder names the folder too
    _assert_same_state(net.state_dict(), NextEmbeddingPredictor.from_pretrained(folder / WEIGHTS_NAME).state_dict())


def test_video_encoder_round_trip(tmp_path):
    torch.manual_seed(0)
    net = VideoTinyNet(image_size=16, width=8, dim=4, context=1, channels=(4,))
    folder = net.save_pretrained(tmp_path / "video", "test footage", fps=2.0, text_encoder="default")
    loaded = VideoTinyNet.from_pretrained(folder)
    _assert_same_state(net.state_dict(), loaded.state_dict())
    assert loaded.info["kind"] == "video-encoder" and loaded.info["fps"] == 2.0
    x = torch.rand(5, 3, 16, 16) - 0.5
    assert torch.equal(net.eval()(x), loaded.eval()(x))


def test_script_model_round_trip_keeps_step_id_types(tmp_path):
    model = _script_model()
    folder = model.save_pretrained(tmp_path / "script", "test annotations", dataset="toy")
    loaded = ScriptModel.from_pretrained(folder)
    _assert_same_state(model.net.state_dict(), loaded.net.state_dict())
    assert loaded.vocab.tasks == {"t": [1, "b", 3], "u": ["x"]} and loaded.vocab.texts["t"][1] == "one"
    assert loaded.vocab.names == {"t": "task t", "u": "task u"} and loaded.config == model.config
    assert loaded.info["dataset"] == "toy" and loaded.info["domain"] == "test annotations"
    assert loaded.predict("t", [[1]]) == model.predict("t", [[1]])
    assert set(loaded.predict("t", [[]])[0]) == {1, "b", 3, END}


def test_save_replaces_a_model_and_keeps_other_files(tmp_path):
    _, folder = _sbd(tmp_path / "m")
    (folder / "MODEL_CARD.md").write_text("card")
    net = NextEmbeddingPredictor(dim=8, window=3, width=16, layers=1, heads=2)
    net.save_pretrained(folder, "other footage")
    _assert_same_state(net.state_dict(), NextEmbeddingPredictor.from_pretrained(folder).state_dict())
    assert sorted(p.name for p in folder.iterdir()) == sorted([CONFIG_NAME, "MODEL_CARD.md", WEIGHTS_NAME])
    with pytest.raises(ValueError, match="needs domain"):
        save_pretrained(folder, net.state_dict(), {"kind": "sbd-predictor"})


def _one_line_error(call, match):
    with pytest.raises(ProcvidError, match=match) as info:
        call()
    assert "\n" not in str(info.value)
    return str(info.value)


def test_folders_that_are_not_ours_give_one_line(tmp_path):
    _, folder = _sbd(tmp_path / "sbd")
    # random bytes as weights
    (folder / WEIGHTS_NAME).write_bytes(np.random.default_rng(0).bytes(4000))
    _one_line_error(lambda: NextEmbeddingPredictor.from_pretrained(folder), "corrupt weights")
    _one_line_error(lambda: load_pretrained(folder), "corrupt weights")
    # weights missing
    (folder / WEIGHTS_NAME).unlink()
    _one_line_error(lambda: load_pretrained(folder), f"{WEIGHTS_NAME} missing")
    # config missing, or not ours
    _, folder = _sbd(tmp_path / "sbd2")
    (folder / CONFIG_NAME).unlink()
    _one_line_error(lambda: load_pretrained(folder), "not a procvid model folder")
    (folder / CONFIG_NAME).write_text('{"architecture": {"dim": 8}}')  # the old format
    _one_line_error(lambda: load_pretrained(folder), "not a procvid model folder")
    (folder / CONFIG_NAME).write_text("{not json")
    _one_line_error(lambda: load_pretrained(folder), "not a procvid model folder")
    _one_line_error(lambda: read_config(tmp_path / "nowhere"), "no such model folder")


def test_a_config_of_another_kind_or_version_is_refused(tmp_path):
    _, folder = _sbd(tmp_path / "sbd")
    message = _one_line_error(lambda: VideoTinyNet.from_pretrained(folder), "a sbd-predictor model, not a video-encoder")
    assert message.startswith(str(folder))
    _one_line_error(lambda: ScriptModel.from_pretrained(folder), "not a script-model")
    config = json.loads((folder / CONFIG_NAME).read_text())
    (folder / CONFIG_NAME).write_text(json.dumps({**config, "format_version": 99}))
    _one_line_error(lambda: NextEmbeddingPredictor.from_pretrained(folder), "format_version 99")
    (folder / CONFIG_NAME).write_text(json.dumps({**config, "architecture": {"dim": 9, "window": 3, "width": 16,
                                                                              "layers": 1, "heads": 2}}))
    _one_line_error(lambda: NextEmbeddingPredictor.from_pretrained(folder), "do not make a sbd-predictor")


class _Payload:
    """Unpickling this writes a marker file: loading a model must never do it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('pwned')",)


@pytest.fixture
def pickled_payload(tmp_path):
    marker = tmp_path / "marker"
    payload = tmp_path / "evil.pt"
    torch.save({"format": "procvid-script", "state_dict": {}, "x": _Payload(marker)}, payload)
    assert not marker.exists()
    return payload, marker


def test_a_pickled_torch_file_is_refused_and_never_unpickled(tmp_path, pickled_payload):
    payload, marker = pickled_payload
    _one_line_error(lambda: ScriptModel.from_pretrained(payload), "not a procvid model folder")
    _one_line_error(lambda: NextEmbeddingPredictor.from_pretrained(payload), "not a procvid model folder")
    # inside one of our folders, in place of the weights
    _, folder = _sbd(tmp_path / "sbd")
    (folder / WEIGHTS_NAME).write_bytes(payload.read_bytes())
    _one_line_error(lambda: NextEmbeddingPredictor.from_pretrained(folder), "corrupt weights")
    _one_line_error(lambda: NextEmbeddingPredictor.from_pretrained(folder / WEIGHTS_NAME), "corrupt weights")
    assert not marker.exists()


def test_graph_predict_refuses_a_pickled_model_in_one_line(pickled_payload, capsys):
    payload, marker = pickled_payload
    assert main(["graph", "predict", "--model", str(payload), "--prefix", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a procvid model folder" in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not marker.exists()


def test_the_shipped_models_are_procvid_model_folders():
    from procvid.paths import CHECKPOINTS_DIR

    for name, kind in (("procvid-sbd", "sbd-predictor"), ("procvid-video-tiny", "video-encoder")):
        config = read_config(CHECKPOINTS_DIR / name, kind)
        assert config["domain"] == "procvid synthetic world v1"
        assert (CHECKPOINTS_DIR / name / WEIGHTS_NAME).is_file()
    assert NextEmbeddingPredictor.from_pretrained(CHECKPOINTS_DIR / "procvid-sbd").info["encoder"].startswith(
        "procvid-video-tiny:")
