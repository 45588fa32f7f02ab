"""Caching of the embedded dataset: reuse, parameter keys, data root, interrupted generation."""
import os

import pytest

from fad_d2.data import synthetic

TINY = synthetic.SynthConfig(num_images=3, seed=7)


def test_second_call_reuses_the_cache(tmp_path, monkeypatch):
    first = synthetic.ensure_split("train", TINY, root=str(tmp_path), progress=False)
    stamp = os.stat(first.json_file).st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("regenerated a cached split")

    monkeypatch.setattr(synthetic, "write_split", fail)
    second = synthetic.ensure_split("train", TINY, root=str(tmp_path), progress=False)
    assert second == first and os.stat(second.json_file).st_mtime_ns == stamp


def test_parameter_change_gets_its_own_folder(tmp_path):
    first = synthetic.ensure_split("train", TINY, root=str(tmp_path), progress=False)
    bigger = synthetic.SynthConfig(num_images=4, seed=7)
    second = synthetic.ensure_split("train", bigger, root=str(tmp_path), progress=False)
    assert second.directory != first.directory
    assert len(os.listdir(second.image_root)) == 4


def test_data_root_follows_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(synthetic.DATA_ENV, raising=False)
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path / "d2"))
    assert synthetic.data_root() == str(tmp_path / "d2" / "fad_synth")
    monkeypatch.setenv(synthetic.DATA_ENV, str(tmp_path / "moved"))
    assert synthetic.data_root() == str(tmp_path / "moved")
    files = synthetic.ensure_split("val", TINY, progress=False)
    assert files.directory.startswith(str(tmp_path / "moved")) and os.path.isfile(files.json_file)


def test_small_switch(monkeypatch):
    monkeypatch.setenv(synthetic.SMALL_ENV, "1")
    assert synthetic.split_config("val") == synthetic.SMALL_SPLITS["val"]
    monkeypatch.setenv(synthetic.SMALL_ENV, "0")
    assert synthetic.split_config("val") == synthetic.SPLITS["val"]


def test_interrupted_generation_leaves_nothing_complete(tmp_path, monkeypatch):
    real = synthetic.generate_image

    def crash_on_third(config, index):
        if index == 2:
            raise KeyboardInterrupt
        return real(config, index)

    monkeypatch.setattr(synthetic, "generate_image", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        synthetic.ensure_split("train", TINY, root=str(tmp_path), progress=False)
    assert os.listdir(tmp_path) == []
    monkeypatch.setattr(synthetic, "generate_image", real)
    files = synthetic.ensure_split("train", TINY, root=str(tmp_path), progress=False)
    assert os.listdir(tmp_path) == [os.path.basename(files.directory)]


def test_folders_of_killed_generations_are_removed(tmp_path):
    name = os.path.basename(synthetic.split_files("train", TINY, str(tmp_path)).directory)
    abandoned = tmp_path / f".{name}.tmp-999999999-x"  # no such process
    (abandoned / "images").mkdir(parents=True)
    synthetic.ensure_split("train", TINY, root=str(tmp_path), progress=False)
    assert not abandoned.exists()
