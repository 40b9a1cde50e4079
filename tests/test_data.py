"""Loading CIFAR-10 from every source, refusing bad input clearly, and the tf.data pipeline."""

import os
import pickle

import numpy as np
import pytest
from PIL import Image

from resnet_utils import data
from resnet_utils.data import CLASS_NAMES, DataError


def write_image_folder(root, sample, per_class=2):
    for split, x, y in (("train", sample.x_train, sample.y_train), ("test", sample.x_test, sample.y_test)):
        for label, name in enumerate(CLASS_NAMES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i, index in enumerate(np.flatnonzero(y == label)[:per_class]):
                Image.fromarray(x[index]).save(folder / f"{i:04d}.png")
    return root


def test_shipped_sample_is_balanced_real_cifar(sample, capsys):
    loaded = data.load_cifar10("sample")
    assert "SAMPLE" in capsys.readouterr().out
    assert loaded.is_sample and loaded.x_train.shape == (1000, 32, 32, 3) and loaded.x_test.shape == (500, 32, 32, 3)
    assert loaded.x_train.dtype == np.uint8
    assert np.bincount(loaded.y_train).tolist() == [100] * 10
    assert np.bincount(loaded.y_test).tolist() == [50] * 10
    assert 80 < loaded.x_train.mean() < 180  # real photographs, not noise or zeros


def test_image_folder_round_trip_and_environment_variable(tmp_path, sample, monkeypatch):
    root = write_image_folder(tmp_path / "cifar", sample)
    loaded = data.load_cifar10("folder", root, verbose=False)
    assert loaded.x_train.shape == (20, 32, 32, 3) and loaded.y_train.tolist() == sorted([*range(10)] * 2)
    first_cat = sample.x_train[np.flatnonzero(sample.y_train == 3)[0]]
    np.testing.assert_array_equal(loaded.x_train[6], first_cat)  # PNG is lossless
    monkeypatch.setenv("RESNET_CIFAR10_DIR", str(root))
    again = data.load_cifar10(verbose=False)  # auto + env var -> folder (served from the cache now)
    assert again.source == "folder" and again.location == str(root)
    np.testing.assert_array_equal(again.x_test, loaded.x_test)


def test_extracted_python_batches(tmp_path, sample):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    x = sample.x_train[:20]
    flat = x.transpose(0, 3, 1, 2).reshape(20, -1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": flat, b"labels": sample.y_train[:20].tolist()}, f)
    loaded = data.load_folder(tmp_path)
    assert loaded.x_train.shape == (100, 32, 32, 3) and loaded.x_test.shape == (20, 32, 32, 3)
    np.testing.assert_array_equal(loaded.x_test, x)


def test_no_network_says_how_to_use_a_local_copy(monkeypatch):
    import keras

    def offline():
        raise Exception("URL fetch failure on https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz: None -- [Errno -3]")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    with pytest.raises(DataError, match="Could not download CIFAR-10.*RESNET_CIFAR10_DIR.*source='sample'"):
        data.load_cifar10("keras")


def _break(root, how):
    if how == "missing_folder":
        return root / "nowhere", "does not exist"
    if how == "missing_split":
        import shutil
        shutil.rmtree(root / "test")
        return root, "has no test/ folder"
    if how == "missing_class":
        import shutil
        shutil.rmtree(root / "train" / "frog")
        return root, r"lacks the class folder\(s\) \['frog'\]"
    if how == "unknown_class":
        (root / "train" / "unicorn").mkdir()
        return root, "unicorn.*does not have"
    if how == "not_an_image":
        (root / "train" / "cat" / "notes.txt").write_text("hello")
        return root, "notes.txt is not an image file"
    if how == "unreadable":
        (root / "test" / "dog" / "9999.jpg").write_bytes(b"not really a jpeg")
        return root, "Cannot read image .*9999.jpg"
    if how == "wrong_size":
        Image.new("RGB", (64, 48)).save(root / "train" / "ship" / "big.png")
        return root, "big.png is a 64x48 RGB image; CIFAR-10 images must be 32x32 RGB"
    if how == "wrong_mode":
        Image.new("L", (32, 32)).save(root / "train" / "ship" / "grey.png")
        return root, "grey.png is a 32x32 L image"
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["missing_folder", "missing_split", "missing_class", "unknown_class",
                                 "not_an_image", "unreadable", "wrong_size", "wrong_mode"])
def test_broken_folders_get_clear_errors(tmp_path, sample, how):
    root = write_image_folder(tmp_path / "cifar", sample, per_class=1)
    path, message = _break(root, how)
    with pytest.raises(DataError, match=message):
        data.load_cifar10("folder", path, verbose=False)


def test_unknown_source_and_folder_without_path():
    with pytest.raises(DataError, match="Unknown data source 'imagenet'"):
        data.load_cifar10("imagenet")
    with pytest.raises(DataError, match="needs a folder"):
        data.load_cifar10("folder")


@pytest.mark.parametrize("images,labels,message", [
    (np.zeros((4, 32, 32), np.uint8), np.zeros(4, int), r"shape \(N, 32, 32, 3\)"),
    (np.zeros((4, 28, 28, 3), np.uint8), np.zeros(4, int), r"shape \(N, 32, 32, 3\)"),
    (np.zeros((4, 32, 32, 3), np.float32), np.zeros(4, int), "must be uint8"),
    (np.zeros((4, 32, 32, 3), np.uint8), np.zeros(3, int), "4 integers"),
    (np.zeros((4, 32, 32, 3), np.uint8), np.eye(4, 10), "4 integers"),
    (np.zeros((4, 32, 32, 3), np.uint8), np.array([0, 1, 10, 2]), r"0\.\.9.*from 0 to 10"),
    (np.zeros((4, 32, 32, 3), np.uint8), np.array([0, -1, 1, 2]), r"0\.\.9"),
    (np.zeros((4, 32, 32, 3), np.uint8), np.zeros(4, np.float32), "integers"),
])
def test_pipeline_refuses_bad_arrays(images, labels, message):
    with pytest.raises(DataError, match=message):
        data.make_dataset(images, labels, np.zeros((32, 32, 3)), 2)


def test_pipeline_refuses_bad_batch_size_and_mean(sample):
    with pytest.raises(DataError, match="batch_size must be a positive integer"):
        data.make_dataset(sample.x_test, sample.y_test, data.pixel_mean(sample.x_train), 0)
    with pytest.raises(DataError, match="mean must be a"):
        data.make_dataset(sample.x_test, sample.y_test, np.zeros(3), 8)


def test_evaluation_pipeline_scales_and_subtracts_the_mean(sample):
    mean = data.pixel_mean(sample.x_train)
    assert mean.shape == (32, 32, 3) and mean.dtype == np.float32 and 0.3 < mean.mean() < 0.6
    x, y = next(iter(data.make_dataset(sample.x_test, sample.y_test, mean, 16)))
    assert x.shape == (16, 32, 32, 3) and x.dtype.name == "float32" and y.dtype.name == "int32"
    np.testing.assert_allclose(x.numpy(), sample.x_test[:16] / 255.0 - mean, atol=1e-6)
    np.testing.assert_array_equal(y.numpy(), sample.y_test[:16])
    batches = list(data.make_dataset(sample.x_test, sample.y_test, mean, 128))
    assert [len(b[0]) for b in batches] == [128, 128, 128, 116]


def _is_pad_crop_flip_of(augmented, original):
    padded = np.pad(original, ((4, 4), (4, 4), (0, 0)))
    for dy in range(9):
        for dx in range(9):
            window = padded[dy:dy + 32, dx:dx + 32]
            if np.allclose(window, augmented, atol=1e-6) or np.allclose(window[:, ::-1], augmented, atol=1e-6):
                return True
    return False


def test_training_pipeline_augments_shuffles_and_is_reproducible(sample):
    pick = np.arange(0, 1000, 15)[:64]  # all ten classes
    x, y = sample.x_train[pick], sample.y_train[pick]
    mean = np.zeros((32, 32, 3), np.float32)
    dataset = data.make_dataset(x, y, mean, 64, training=True, seed=3)
    epoch1 = next(iter(dataset))
    epoch2 = next(iter(dataset))
    # shuffled: same multiset of labels, another order, and another order in the next epoch
    assert sorted(epoch1[1].numpy()) == sorted(y)
    assert not np.array_equal(epoch1[1].numpy(), y)
    assert not np.array_equal(epoch1[1].numpy(), epoch2[1].numpy())
    # every augmented image is a 32x32 window of the zero-padded original, maybe mirrored
    originals = {}
    for image, label in zip(x, y):
        originals.setdefault(int(label), []).append(image / 255.0)
    images, labels = epoch1[0].numpy(), epoch1[1].numpy()
    for image, label in zip(images[:12], labels[:12]):
        assert any(_is_pad_crop_flip_of(image, o) for o in originals[int(label)])
    changed = sum(not any(np.allclose(image, o) for o in originals[int(label)]) for image, label in zip(images, labels))
    assert changed > 32  # most images are moved or flipped
    # the same seed gives the same first epoch
    again = next(iter(data.make_dataset(x, y, mean, 64, training=True, seed=3)))
    np.testing.assert_array_equal(again[0].numpy(), images)


def test_balanced_subset_takes_each_class_equally_and_reproducibly(sample):
    picked = data.balanced_subset(sample.y_test, 5, seed=1)
    assert len(picked) == 50 and len(set(picked)) == 50
    assert np.bincount(sample.y_test[picked]).tolist() == [5] * 10
    assert sorted(sample.y_test[picked[:10]].tolist()) != [0] * 10  # not in class order
    np.testing.assert_array_equal(picked, data.balanced_subset(sample.y_test, 5, seed=1))


# --- issue 12: data identity, the cache, one clear line for every bad input --------------------------------


def test_fingerprint_is_stable_and_sees_one_changed_pixel(sample):
    again = data.load_sample()
    assert sample.fingerprint == again.fingerprint and len(sample.fingerprint) == 16
    changed = data.CifarData(sample.x_train.copy(), sample.y_train, sample.x_test, sample.y_test, "sample")
    changed.x_train[5, 3, 3, 1] ^= 1
    assert changed.fingerprint != sample.fingerprint


def test_an_edited_image_is_decoded_again(tmp_path, sample):
    root = write_image_folder(tmp_path / "cifar", sample, per_class=1)
    first = data.load_folder(root)
    image = root / "train" / "cat" / "0000.png"
    Image.fromarray(255 - np.asarray(Image.open(image))).save(image)
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    second = data.load_folder(root)
    np.testing.assert_array_equal(second.x_train[3], 255 - first.x_train[3])


@pytest.mark.parametrize("damage", ["truncated", "wrong_keys"])
def test_a_damaged_cache_is_rebuilt_with_a_notice(tmp_path, sample, capsys, damage):
    root = write_image_folder(tmp_path / "cifar", sample, per_class=1)
    first = data.load_folder(root)
    (cache,) = (tmp_path / "cache").glob("cifar10-*.npz")
    if damage == "truncated":
        cache.write_bytes(cache.read_bytes()[:100])
    else:
        np.savez(cache, images=np.zeros(3))
    capsys.readouterr()
    again = data.load_folder(root)
    assert "the decoded-image cache is damaged" in capsys.readouterr().out
    np.testing.assert_array_equal(again.x_test, first.x_test)
    assert data.load_folder(root).x_train.shape == first.x_train.shape  # the rebuilt cache is whole


@pytest.mark.parametrize("split", ["train", "test"])
def test_class_folders_without_images_are_refused(tmp_path, sample, split):
    root = write_image_folder(tmp_path / "cifar", sample, per_class=1)
    for image in (root / split).glob("*/*.png"):
        image.unlink()
    with pytest.raises(DataError, match=f"{split} has class folders but no images in any of them"):
        data.load_folder(root)


def _write_batches(folder, sample, broken=None, content=None):
    folder.mkdir()
    flat = sample.x_train[:20].transpose(0, 3, 1, 2).reshape(20, -1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            if name == broken and isinstance(content, bytes):
                f.write(content)
            else:
                pickle.dump(content if name == broken else {b"data": flat, b"labels": sample.y_train[:20].tolist()}, f)


@pytest.mark.parametrize("content,message", [
    (b"\x00garbage, not a pickle", "data_batch_3 is not a CIFAR-10 python batch \\(cannot unpickle it"),
    ({b"pixels": [1, 2]}, "data_batch_3 is not a CIFAR-10 python batch: it needs the keys b'data' and b'labels'"),
    ({b"data": np.zeros((20, 1024), np.uint8), b"labels": [0] * 20}, r"data_batch_3: data must be N rows of 3072 uint8 pixels"),
    ({b"data": np.zeros((20, 3072), np.uint8), b"labels": [0] * 19}, r"data_batch_3: data must be N rows.*19 labels"),
])
def test_a_broken_python_batch_is_named(tmp_path, sample, content, message):
    _write_batches(tmp_path / "cifar-10-batches-py", sample, "data_batch_3", content)
    with pytest.raises(DataError, match=message):
        data.load_folder(tmp_path)


def test_a_decompression_bomb_is_refused_naming_the_file(tmp_path, sample, monkeypatch):
    root = write_image_folder(tmp_path / "cifar", sample, per_class=1)
    Image.new("RGB", (64, 64)).save(root / "train" / "dog" / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1500)  # 64x64 is then a "bomb" (like 40,000x40,000 really)
    with pytest.raises(DataError, match="bomb.png claims to be a huge image"):
        data.load_folder(root)


def test_an_npz_without_the_cifar_arrays_is_named(tmp_path):
    np.savez(tmp_path / "wrong.npz", images=np.zeros(3))
    with pytest.raises(DataError, match=r"wrong.npz lacks the array\(s\) \['x_train', 'y_train', 'x_test', 'y_test'\]"):
        data.read_arrays(tmp_path / "wrong.npz")
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(DataError, match="Cannot read .*broken.npz"):
        data.read_arrays(tmp_path / "broken.npz")


def test_a_file_given_as_the_folder_says_so(tmp_path):
    (tmp_path / "cifar.npz").write_bytes(b"")
    with pytest.raises(DataError, match="is a file, not a folder"):
        data.load_cifar10("folder", tmp_path / "cifar.npz")


def test_offline_the_python_message_names_resnet_data_for_notebooks(monkeypatch):
    import keras

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", lambda: (_ for _ in ()).throw(Exception("URL fetch failure")))
    with pytest.raises(DataError, match="RESNET_DATA=sample") as caught:
        data.load_cifar10("keras")
    assert "--data sample" in caught.value.cli_message and "--data-dir" in caught.value.cli_message


def test_training_pass_is_a_function_of_seed_and_epoch(sample):
    import tensorflow as tf

    x, y, mean = sample.x_train[:300], sample.y_train[:300], np.zeros((32, 32, 3), np.float32)
    epoch = tf.Variable(0, dtype=tf.int64)

    def one_pass(at_epoch: int, seed: int = 3):
        epoch.assign(at_epoch)
        batches = list(data.make_dataset(x, y, mean, 128, training=True, seed=seed, epoch=epoch))
        return np.concatenate([b[0].numpy() for b in batches]), np.concatenate([b[1].numpy() for b in batches])

    fifth = one_pass(5)
    assert len(fifth[1]) == 300 and sorted(fifth[1]) == sorted(y)
    for again in (one_pass(5), one_pass(5)):  # a fresh dataset (a new process, a resume) repeats epoch 5 exactly
        np.testing.assert_array_equal(again[0], fifth[0])
        np.testing.assert_array_equal(again[1], fifth[1])
    assert not np.array_equal(one_pass(6)[1], fifth[1])  # another epoch: another order
    assert not np.array_equal(one_pass(5, seed=4)[1], fifth[1])  # another seed: another order


def test_pad_crop_flip_of_a_batch_is_per_image_and_of_one_image_is_the_same_maths(sample):
    import tensorflow as tf

    images = sample.x_train[:64] / 255.0
    out = data.pad_crop_flip(tf.constant(images, tf.float32), tf.constant([1, 2])).numpy()
    assert out.shape == images.shape
    assert all(_is_pad_crop_flip_of(a, o) for a, o in zip(out, images))
    assert len({a.tobytes() for a in (out - images)}) > 32  # independent crops/flips per image
    single = data.pad_crop_flip(tf.constant(images[0], tf.float32), tf.constant([1, 2])).numpy()
    np.testing.assert_array_equal(single, out[0])


def _offline(monkeypatch):
    import keras

    def fail():
        raise Exception("URL fetch failure on https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz: None -- [Errno -3]")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", fail)


@pytest.mark.parametrize("source", [None, "auto"])
def test_offline_auto_falls_back_to_the_sample_saying_so_in_one_line(monkeypatch, capsys, sample, source):
    _offline(monkeypatch)
    loaded = data.load_cifar10(source)
    assert loaded.is_sample and loaded.fingerprint == sample.fingerprint
    notices = [line for line in capsys.readouterr().out.splitlines() if line.startswith("NOTICE")]
    assert len(notices) == 1 and "SAMPLE" in notices[0] and "not of CIFAR-10" in notices[0]


def test_offline_an_explicit_download_or_no_fallback_still_raises(monkeypatch):
    _offline(monkeypatch)
    with pytest.raises(DataError, match="Could not download CIFAR-10"):
        data.load_cifar10("keras")
    with pytest.raises(DataError, match="Could not download CIFAR-10"):
        data.load_cifar10("auto", sample_if_offline=False)
    monkeypatch.setenv("RESNET_DATA", "keras")
    with pytest.raises(DataError, match="Could not download CIFAR-10"):
        data.load_cifar10()


def test_a_folder_from_the_environment_is_printed_by_its_variable_not_its_path(tmp_path, sample, monkeypatch, capsys):
    root = write_image_folder(tmp_path / "cifar", sample)
    monkeypatch.setenv("RESNET_CIFAR10_DIR", str(root))
    loaded = data.load_cifar10()
    out = capsys.readouterr().out
    assert loaded.source == "folder" and loaded.location == str(root)  # the data still say where they came from
    assert "from $RESNET_CIFAR10_DIR" in out and str(tmp_path) not in out

# --- issue 24: a data folder cannot run code, and every data error names its file ----------------------


class _RunsCode:
    """A pickle payload that, unpickled with plain pickle.load, creates a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Evaluates:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (eval, (f"open({self.marker!r}, 'w').write('ran')",))


@pytest.mark.parametrize("payload", [_RunsCode, _Evaluates])
def test_a_batch_file_whose_pickle_runs_code_is_refused_before_it_runs(tmp_path, sample, payload):
    marker = tmp_path / "marker"
    folder = tmp_path / "cifar-10-batches-py"
    _write_batches(folder, sample)
    flat = sample.x_train[:20].transpose(0, 3, 1, 2).reshape(20, -1)
    with open(folder / "data_batch_2", "wb") as f:
        pickle.dump({b"data": flat, b"labels": sample.y_train[:20].tolist(), b"extra": payload(marker)}, f)
    with pytest.raises(DataError, match=r"data_batch_2 is not a CIFAR-10 python batch \(cannot unpickle it: it names "):
        data.load_folder(tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_batches_of_every_pickle_protocol_still_load(tmp_path, sample, protocol):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    flat = sample.x_train[:20].transpose(0, 3, 1, 2).reshape(20, -1)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"batch_label": b"batch", b"data": flat, b"labels": sample.y_train[:20].tolist(),
                         b"filenames": [b"x.png"] * 20}, f, protocol=protocol)
    assert data.load_folder(tmp_path).x_train.shape == (100, 32, 32, 3)


def test_a_batch_with_labels_out_of_range_names_the_file(tmp_path, sample):
    flat = sample.x_train[:20].transpose(0, 3, 1, 2).reshape(20, -1)
    _write_batches(tmp_path / "cifar-10-batches-py", sample, "test_batch", {b"data": flat, b"labels": [12] * 20})
    with pytest.raises(DataError, match=r"test_batch: labels must lie in 0..9; found values from 12 to 12"):
        data.load_folder(tmp_path)


def test_an_empty_class_folder_is_refused_naming_it(tmp_path, sample):
    root = write_image_folder(tmp_path / "cifar", sample, per_class=1)
    for image in (root / "train" / "frog").glob("*.png"):
        image.unlink()
    with pytest.raises(DataError, match=r"train has no images in the class folder\(s\) \['frog'\]"):
        data.load_folder(root)


def test_an_image_edited_in_place_with_the_same_size_and_mtime_is_decoded_again(tmp_path, sample):
    root = write_image_folder(tmp_path / "cifar", sample, per_class=1)
    first = data.load_folder(root)
    image = root / "train" / "cat" / "0000.png"
    stat = image.stat()
    pixels = np.asarray(Image.open(image)).copy()
    pixels[0, 0, 0] ^= 1  # one pixel: same PNG size is likely, and the mtime is put back
    Image.fromarray(pixels).save(image)
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = data.load_folder(root)
    np.testing.assert_array_equal(second.x_train[3], pixels)
    assert not np.array_equal(second.x_train[3], first.x_train[3])


def test_a_cache_with_shuffled_labels_is_named_and_rebuilt(tmp_path, sample, capsys):
    root = write_image_folder(tmp_path / "cifar", sample, per_class=1)
    first = data.load_folder(root)
    (cache,) = (tmp_path / "cache").glob("cifar10-*.npz")
    with np.load(cache) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["y_train"] = arrays["y_train"][::-1].copy()
    np.savez(cache, **arrays)
    capsys.readouterr()
    again = data.load_folder(root)
    out = capsys.readouterr().out
    assert "the decoded-image cache is damaged" in out and str(cache) in out
    np.testing.assert_array_equal(again.y_train, first.y_train)


def test_a_cache_folder_under_a_regular_file_costs_a_notice_not_the_load(tmp_path, sample, monkeypatch, capsys):
    root = write_image_folder(tmp_path / "cifar", sample, per_class=1)
    (tmp_path / "afile").write_text("not a folder")
    monkeypatch.setenv("RESNET_CACHE_DIR", str(tmp_path / "afile" / "cache"))
    loaded = data.load_folder(root)
    assert loaded.x_train.shape == (10, 32, 32, 3)
    assert "cannot write the decoded-image cache" in capsys.readouterr().out


def test_label_errors_name_the_split(sample):
    bad = sample.y_train.copy()
    bad[0] = 11
    with pytest.raises(DataError, match=r"^training images: labels must lie in 0..9"):
        data.check_arrays(sample.x_train, bad, what="training images")
