import numpy as np

from ui.images import diverging_rgb, tile, unit_maps_image, upscale


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
