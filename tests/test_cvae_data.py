"""Datasets: the CelebA layout, the CSV layout, the toy fixture, decoding, and every kind of bad input."""

import re
import shutil
import warnings

import numpy as np
import pytest
from PIL import Image

from clipxai.cli.commands import main
from clipxai.generators.cvae import data as D
from clipxai.generators.cvae.fixture import ATTRIBUTES, COLOUR_COLUMNS, SHAPE_COLUMNS, make_fixture
from clipxai.generators.cvae.phrases import SentenceBuilder


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory):
    return make_fixture(tmp_path_factory.mktemp("celeba") / "fx", n=30, seed=0)


def copy(src, tmp_path):
    return shutil.copytree(src, tmp_path / "copy")


def test_fixture_is_in_the_exact_celeba_text_format(fixture_dir):
    lines = (fixture_dir / "list_attr_celeba.txt").read_text().splitlines()
    assert lines[0] == "30"
    assert lines[1].split() == ATTRIBUTES and len(ATTRIBUTES) == 25
    for i, line in enumerate(lines[2:], start=1):
        assert re.fullmatch(rf"{i:06d}\.jpg( (-1| 1)){{25}}", line)
        values = [int(v) for v in line.split()[1:]]
        nc, ns = len(COLOUR_COLUMNS), len(SHAPE_COLUMNS)
        colours, shapes, positions = values[:nc], values[nc:nc + ns], values[nc + ns + 1:]
        assert colours.count(1) == shapes.count(1) == positions.count(1) == 1
    splits = [int(line.split()[1]) for line in (fixture_dir / "list_eval_partition.txt").read_text().splitlines()]
    assert splits == [0] * 24 + [1] * 3 + [2] * 3
    with Image.open(fixture_dir / "img_align_celeba" / "000001.jpg") as im:
        assert im.format == "JPEG" and im.size == (64, 64)


def test_fixture_is_reproducible_and_refuses_to_overwrite(tmp_path, fixture_dir):
    again = make_fixture(tmp_path / "again", n=30, seed=0)
    assert (again / "list_attr_celeba.txt").read_text() == (fixture_dir / "list_attr_celeba.txt").read_text()
    assert main(["cvae", "make-fixture", str(again), "--n", "5"]) != 0
    assert (again / "list_attr_celeba.txt").read_text().startswith("30\n")
    assert main(["cvae", "make-fixture", str(again), "--n", "5", "--overwrite"]) == 0
    assert (again / "list_attr_celeba.txt").read_text().startswith("5\n")


def test_celeba_layout_is_read_with_its_partition(fixture_dir):
    t = D.read_table(fixture_dir)
    assert t.layout == "celeba" and len(t) == 30 and t.attributes == ATTRIBUTES
    assert t.values.shape == (30, 25) and set(np.unique(t.values)) == {-1, 1}
    assert t.partition.tolist() == [0] * 24 + [1] * 3 + [2] * 3
    assert D.read_table(fixture_dir / "list_attr_celeba.txt").files == t.files


def test_the_official_download_layout_with_anno_img_eval_folders(tmp_path, fixture_dir):
    root = tmp_path / "CelebA"
    (root / "Anno").mkdir(parents=True)
    (root / "Eval").mkdir()
    (root / "Img").mkdir()
    shutil.copy(fixture_dir / "list_attr_celeba.txt", root / "Anno")
    shutil.copy(fixture_dir / "list_eval_partition.txt", root / "Eval")
    shutil.copytree(fixture_dir / "img_align_celeba", root / "Img" / "img_align_celeba")
    t = D.read_table(root)
    assert len(t) == 30 and t.partition is not None
    assert len(D.decode_images(t, 16).rows) == 30


def test_csv_layout_with_a_split_column_and_an_images_folder(tmp_path, fixture_dir):
    (tmp_path / "images").mkdir()
    shutil.copy(fixture_dir / "img_align_celeba" / "000001.jpg", tmp_path / "images" / "a.jpg")
    shutil.copy(fixture_dir / "img_align_celeba" / "000002.jpg", tmp_path / "images" / "b.jpg")
    (tmp_path / "attrs.csv").write_text("file,Smiling,split,Male\na.jpg,1,train,0\nb.jpg,false,val,yes\n")
    t = D.read_table(tmp_path)
    assert t.layout == "csv" and t.attributes == ["Smiling", "Male"]
    assert t.values.tolist() == [[1, -1], [-1, 1]] and t.partition.tolist() == [0, 1]
    assert t.image_dir == tmp_path / "images"
    assert SentenceBuilder(t.attributes).sentence(t.values[0]) == "a smiling woman"


def test_images_are_centre_cropped_and_resized(tmp_path):
    arr = np.zeros((60, 100, 3), np.uint8)
    arr[:, 20:80] = (0, 0, 255)   # the centre 60x60 square is blue, the sides are black
    Image.fromarray(arr).save(tmp_path / "wide.png")
    x = D.load_image(tmp_path / "wide.png", 16)
    assert x.shape == (3, 16, 16) and x.dtype == np.uint8
    assert x[2].min() > 240 and x[:2].max() < 15
    # a crop smaller than the image keeps only its centre
    assert D.load_image(tmp_path / "wide.png", 8, crop=30)[2].min() > 240


def test_decoded_images_are_cached_and_reused(tmp_path, fixture_dir, monkeypatch):
    t = D.read_table(fixture_dir)
    first = D.decode_images(t, 16, cache_dir=tmp_path / "cache")
    calls = []
    real = D.load_image
    monkeypatch.setattr(D, "load_image", lambda *a, **k: calls.append(a) or real(*a, **k))
    second = D.decode_images(t, 16, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(first.images, second.images)
    assert calls == []
    D.decode_images(t, 32, cache_dir=tmp_path / "cache")  # another size is another entry
    assert len(calls) == 30


def test_undecodable_and_missing_images_are_skipped_and_counted(tmp_path, fixture_dir):
    root = copy(fixture_dir, tmp_path)
    (root / "img_align_celeba" / "000003.jpg").write_bytes(b"not a jpeg at all")
    (root / "img_align_celeba" / "000007.jpg").unlink()
    with pytest.warns(D.SkippedImagesWarning, match="Skipped 2 of 30"):
        got = D.decode_images(D.read_table(root), 16)
    assert len(got.rows) == 28 and 2 not in got.rows and 6 not in got.rows
    assert got.skipped == ["000003.jpg", "000007.jpg"]


def write_attr(tmp_path, text):
    (tmp_path / "img_align_celeba").mkdir(exist_ok=True)
    (tmp_path / "list_attr_celeba.txt").write_text(text)
    return tmp_path


@pytest.mark.parametrize("text, message", [
    ("2\nSmiling Male\na.jpg 1 -1\nb.jpg 1\n", "Line 4 of list_attr_celeba.txt has 1 values, but its header names 2"),
    ("3\nSmiling Male\na.jpg 1 -1\nb.jpg 1 1\n", "says it lists 3 images but lists 2"),
    ("2\nSmiling Male\na.jpg 1 -1\nb.jpg 1 maybe\n", "holds 'maybe', which is not +1 or -1"),
    ("Smiling Male\na.jpg 1 -1\n", "first line of list_attr_celeba.txt should be the number of images"),
    ("0\nSmiling Male\n", "lists no images"),
    ("", "too short"),
])
def test_malformed_attribute_files_fail_with_one_sentence(tmp_path, text, message):
    with pytest.raises(D.DataError, match=re.escape(message)):
        D.read_table(write_attr(tmp_path, text))


def test_missing_attribute_file_and_missing_dataset(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(D.DataError, match="No attribute file in"):
        D.read_table(tmp_path / "empty")
    with pytest.raises(D.DataError, match="does not exist"):
        D.read_table(tmp_path / "nowhere")


def test_a_dataset_with_no_readable_image_fails(tmp_path):
    root = write_attr(tmp_path, "1\nSmiling\nx.jpg 1\n")
    (root / "img_align_celeba" / "x.jpg").write_bytes(b"\x00" * 10)
    with pytest.raises(D.DataError, match="None of the 1 images"):
        D.decode_images(D.read_table(root), 16)


@pytest.mark.parametrize("csv_text, message", [
    ("", "is empty"),
    ("file,Smiling\n", "lists no images"),
    ("file,Smiling,Male\na.jpg,1\n", "Line 2 of a.csv has 2 fields, but its header has 3"),
    ("file,Smiling\na.jpg,2\n", "not a binary value"),
])
def test_malformed_csv_files_fail_with_one_sentence(tmp_path, csv_text, message):
    (tmp_path / "a.csv").write_text(csv_text)
    with pytest.raises(D.DataError, match=re.escape(message)):
        D.read_table(tmp_path / "a.csv")


def test_caption_command_prints_sentences_and_reports_bad_input(tmp_path, fixture_dir, capsys):
    assert main(["cvae", "caption", str(fixture_dir), "--limit", "4"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 4 and out[0].startswith("000001.jpg\ta ")
    t = D.read_table(fixture_dir)
    assert out[2].split("\t")[1] == SentenceBuilder(ATTRIBUTES).sentence(t.values[2])

    write_attr(tmp_path, "1\nSmiling Freckles\nx.jpg 1 1\n")
    assert main(["cvae", "caption", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "x.jpg\ta smiling person with freckles"
    assert "warning: The attribute 'Freckles' is not in the phrase table" in captured.err

    (tmp_path / "list_attr_celeba.txt").write_text("1\nSmiling Male\nx.jpg 1\n")
    assert main(["cvae", "caption", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: Line 3 of list_attr_celeba.txt") and "\n" not in err and "Traceback" not in err


def test_validation_split_falls_back_to_a_seeded_fraction(fixture_dir):
    t = D.read_table(fixture_dir)
    t.partition = None
    rows = np.arange(30)
    a, b = D.split_rows(t, rows, 0.2, seed=1), D.split_rows(t, rows, 0.2, seed=1)
    assert len(a["val"]) == 6 and len(a["train"]) == 24 and not set(a["val"]) & set(a["train"])
    np.testing.assert_array_equal(a["val"], b["val"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(D.split_rows(D.read_table(fixture_dir), rows)["test"]) == 3
