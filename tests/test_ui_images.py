import numpy as np

from ui.images import PREVIEW_BORDER, diverging_rgb, preview_image, tile, unit_maps_image, upscale


def test_diverging_map_end_points_and_middle():
    rgb = diverging_rgb(np.array([-2.0, 0.0, 2.0]))
    assert rgb.dtype == np.uint8 and rgb.shape == (3, 3)
    assert tuple(rgb[0]) == (245, 147, 34) and tuple(rgb[1]) == (232, 234, 237) and tuple(rgb[2]) == (8, 119, 189)
    assert (diverging_rgb(np.zeros(4)) == rgb[1]).all()  # all-zero input does not divide by zero


def test_upscale_is_nearest_neighbour():
    img = np.array([[0, 1], [2, 3]])
    big = upscale(img, 3)
    assert big.shape == (6, 6) and set(np.unique(big[:3, :3])) == {0} and big[5, 5] == 3


def test_tile_places_images_with_gaps():
    imgs = np.zeros((5, 4, 4, 3), dtype=np.uint8)
    out = tile(imgs, columns=2, gap=1)
    assert out.shape == (3 * 5 - 1, 2 * 5 - 1, 3)
    assert (out[4, :, :] == 255).all()  # gap row


def test_unit_maps_image_flips_rows_so_x2_points_up():
    maps = np.zeros((1, 2, 2))
    maps[0, 1, :] = 1.0  # high x2 row is positive
    img = unit_maps_image(maps, columns=1, factor=1)
    assert tuple(img[0, 0]) == (8, 119, 189)


def test_a_one_pixel_white_upload_previews_as_a_framed_square_of_at_least_the_minimum_size():
    """Issue 12 item 5: a one-pixel white image previewed as an invisible white square."""
    white = np.full((1, 1, 3), 255, dtype=np.uint8)
    out = preview_image(white, size=160, border=2)
    assert out.shape == (164, 164, 3) and out.dtype == np.uint8
    frame = np.concatenate([out[:2].reshape(-1, 3), out[-2:].reshape(-1, 3), out[:, :2].reshape(-1, 3),
                            out[:, -2:].reshape(-1, 3)])
    assert (frame == PREVIEW_BORDER).all()
    assert (out[2:-2, 2:-2] == 255).all()  # the picture itself is untouched
    # mid grey stands apart from a white page and from Streamlit's dark background (#0e1117) alike
    assert 255 - PREVIEW_BORDER >= 100 and PREVIEW_BORDER - 0x11 >= 100


def test_preview_upscales_by_nearest_neighbour_to_at_least_the_minimum_on_the_longer_side():
    image = np.arange(8 * 3 * 3, dtype=np.uint8).reshape(8, 3, 3)
    out = preview_image(image, size=100, border=1)
    factor = 13  # ceil(100 / 8): never smaller than asked, unlike size // 8 = 12
    assert out.shape == (8 * factor + 2, 3 * factor + 2, 3)
    assert (out[1:-1, 1:-1] == upscale(image, factor)).all()
    big = np.zeros((300, 200, 3), dtype=np.uint8)
    assert preview_image(big, size=160, border=2).shape == (304, 204, 3)  # already large: not shrunk
