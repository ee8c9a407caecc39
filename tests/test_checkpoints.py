"""The one checkpoint reader: contents, and one-line errors that name the file."""
import pytest
import torch

from noisymss.checkpoints import load_checkpoint


def test_hyper_parameters_and_submodule_weights(tmp_path):
    path = tmp_path / "a.ckpt"
    torch.save({"hyper_parameters": {"width": 0.5}, "state_dict": {"model.w": torch.ones(2), "other.b": torch.zeros(1)}},
               path)
    ckpt = load_checkpoint(path)
    assert ckpt.path == path and ckpt.hparams == {"width": 0.5}
    assert list(ckpt.weights("model.")) == ["w"] and list(ckpt.state_dict) == ["model.w", "other.b"]


def test_bad_files_are_one_line_errors_naming_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="none.ckpt: checkpoint not found"):
        load_checkpoint(tmp_path / "none.ckpt")
    (tmp_path / "config.yaml").write_text("model: {}\n")
    with pytest.raises(ValueError, match="config.yaml: not a readable Lightning checkpoint"):
        load_checkpoint(tmp_path / "config.yaml")
    torch.save(torch.ones(3), tmp_path / "tensor.pt")
    with pytest.raises(ValueError, match="tensor.pt: not a Lightning checkpoint"):
        load_checkpoint(tmp_path / "tensor.pt")
