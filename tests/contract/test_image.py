"""image against Prism (both specs): JSON and multipart requests must validate. Prism's answers hold
placeholder URLs, so these runs use --no-save and check the request, not the files."""

import json

from tests.contract.conftest import assert_valid
from tests.fake.images import make_png


def test_create_validates(prism):
    result = prism.run("image", "create", "a fox", "-n", "2", "--size", "512x512", "--response-format", "url",
                       "--user", "u1", "--no-save")
    assert_valid(result)
    assert "data" in json.loads(result.stdout)


def test_create_dalle3_options_validate(prism):
    result = prism.run("image", "create", "a fox", "-m", "dall-e-3", "--size", "1792x1024", "--quality", "hd",
                       "--style", "natural", "--no-save")
    assert_valid(result)


def test_create_gpt_image_options_validate(prism_current):
    result = prism_current.run("image", "create", "a fox", "-m", "gpt-image-1", "--size", "1536x1024", "--quality",
                               "high", "--background", "transparent", "--output-format", "webp", "--no-save")
    assert_valid(result)


def test_edit_multipart_validates(prism, tmp_path):
    image, mask = tmp_path / "room.png", tmp_path / "mask.png"
    image.write_bytes(make_png(16, 16, colour_type=2))
    mask.write_bytes(make_png(16, 16, colour_type=6))
    result = prism.run("image", "edit", image, "--mask", mask, "--prompt", "a window", "-n", "2", "--size",
                       "256x256", "--response-format", "b64_json", "--user", "u1", "--no-save")
    assert_valid(result)


def test_edit_several_images_validates(prism_current, tmp_path):
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    first.write_bytes(make_png(8, 8))
    second.write_bytes(make_png(8, 8))
    result = prism_current.run("image", "edit", first, second, "-p", "combine", "-m", "gpt-image-1", "--quality",
                               "high", "--no-save")
    assert_valid(result)


def test_variation_multipart_validates(prism, tmp_path):
    image = tmp_path / "otter.png"
    image.write_bytes(make_png(8, 8))
    result = prism.run("image", "variation", image, "-n", "3", "--size", "512x512", "--no-save")
    assert_valid(result)
