"""oaicli.media.png reads the signature, IHDR and tRNS of real PNG files, with no image library."""

import pytest

from oaicli.media.png import NotPNG, read_info
from tests.fake.images import make_png


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_reads_dimensions_and_colour_type(tmp_path):
    info = read_info(write(tmp_path, "a.png", make_png(64, 32, colour_type=2)))
    assert (info.width, info.height, info.colour_type, info.bit_depth) == (64, 32, 2, 8)
    assert not info.square
    assert not info.has_alpha


@pytest.mark.parametrize("colour_type", [4, 6])
def test_alpha_colour_types_have_alpha(tmp_path, colour_type):
    info = read_info(write(tmp_path, "a.png", make_png(8, 8, colour_type=colour_type)))
    assert info.has_alpha and info.square


@pytest.mark.parametrize("colour_type", [2, 3])
def test_trns_chunk_gives_alpha(tmp_path, colour_type):
    assert not read_info(write(tmp_path, "a.png", make_png(4, 4, colour_type))).has_alpha
    assert read_info(write(tmp_path, "b.png", make_png(4, 4, colour_type, trns=True))).has_alpha


def test_a_png_by_name_only_is_refused(tmp_path):
    with pytest.raises(NotPNG, match="signature"):
        read_info(write(tmp_path, "photo.png", b"\xff\xd8\xff\xe0 a JPEG really"))


@pytest.mark.parametrize("length", [12, 20])  # cut in the chunk head, and inside IHDR's fields
def test_a_truncated_png_is_refused(tmp_path, length):
    with pytest.raises(NotPNG, match="cut short"):
        read_info(write(tmp_path, "cut.png", make_png(4, 4)[:length]))


def test_missing_ihdr_is_refused(tmp_path):
    content = make_png(4, 4)
    with pytest.raises(NotPNG, match="IHDR"):
        read_info(write(tmp_path, "x.png", content[:12] + b"JUNK" + content[16:]))
