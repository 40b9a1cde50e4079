"""CIFAR-10: loading it (download, local folder or the shipped sample) and feeding it with tf.data.

Where the images come from is chosen by ``source`` (or the ``RESNET_DATA`` environment variable):

* ``"keras"``: ``keras.datasets.cifar10.load_data()``, which downloads once into ``~/.keras``;
* ``"folder"``: a local copy, given by ``data_dir`` or ``RESNET_CIFAR10_DIR``: either image folders
  ``train/<class>/*.jpg|png`` and ``test/<class>/...`` or an extracted ``cifar-10-batches-py``;
* ``"sample"``: 1,000 training and 500 test images shipped inside this package (works offline);
* ``"auto"`` (default): ``"folder"`` when a folder is named, else ``"keras"``, and the sample (saying
  so) when the download fails.

Images stay ``uint8`` in memory; ``make_dataset`` scales them to [0, 1], augments them (training
only: pad 4 + random 32x32 crop + horizontal flip) and subtracts the per-pixel mean, all inside the
tf.data graph.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from resnet_utils._quiet import tensorflow as _tensorflow  # TensorFlow, imported quietly when first needed

CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SHAPE = (32, 32, 3)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
SOURCES = ("auto", "keras", "folder", "sample")
SAMPLE_PATH = Path(__file__).parent / "sample_data" / "cifar10_sample.npz"
DATA_DIR_ENV = "RESNET_CIFAR10_DIR"
SOURCE_ENV = "RESNET_DATA"
CACHE_ENV = "RESNET_CACHE_DIR"


class DataError(ValueError):
    """The data asked for cannot be used as it is; the message says what was wrong and what to do.

    ``cli_message``, where given, says the same with the command line's flags (``--data sample``,
    ``--data-dir``) instead of the Python API's arguments; the command line prints that one.
    """

    def __init__(self, message: str, cli_message: str | None = None):
        super().__init__(message)
        self.cli_message = cli_message or message


@dataclass
class CifarData:
    """CIFAR-10 in memory: uint8 images (N, 32, 32, 3), int labels (N,) and where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    location: str = ""

    @property
    def is_sample(self) -> bool:
        return self.source == "sample"

    @functools.cached_property
    def fingerprint(self) -> str:
        """A short hash of all four arrays (computed once): which data a run was trained on."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(memoryview(array).cast("B"))
        return digest.hexdigest()[:16]

    def describe(self) -> str:
        where = f" from {self.location}" if self.location else ""
        kind = "the shipped CIFAR-10 SAMPLE (not the full data set)" if self.is_sample else "CIFAR-10"
        return f"{kind} via {self.source!r}{where}: {len(self.x_train):,} training and {len(self.x_test):,} test images"


def load_cifar10(source: str | None = None, data_dir: str | os.PathLike | None = None, verbose: bool = True,
                 sample_if_offline: bool = True) -> CifarData:
    """Load CIFAR-10 as uint8 arrays from Keras's download, a local folder or the shipped sample.

    Args:
        source: ``"auto"``, ``"keras"``, ``"folder"`` or ``"sample"``; ``None`` reads ``RESNET_DATA``
            and falls back to ``"auto"``.
        data_dir: the local copy for ``"folder"``; ``None`` reads ``RESNET_CIFAR10_DIR``.
        verbose: print one line saying what was loaded (and a notice when it is only the sample).
        sample_if_offline: with ``source="auto"`` and no folder, when the download fails (no network),
            load the shipped sample instead, with a one-line notice, rather than raise; an explicit
            ``"keras"`` always raises.

    Raises:
        DataError: unknown source, missing/broken folder, or no network for an explicit ``"keras"``
            download (the message says how to use a local copy instead).
    """
    source = source or os.environ.get(SOURCE_ENV) or "auto"
    if source not in SOURCES:
        raise DataError(f"Unknown data source {source!r}; use one of {', '.join(SOURCES)}.")
    from_env = not data_dir and bool(os.environ.get(DATA_DIR_ENV))
    data_dir = data_dir or os.environ.get(DATA_DIR_ENV) or None
    auto, fell_back = source == "auto", False
    if auto:
        source = "folder" if data_dir else "keras"
    if source == "folder":
        if not data_dir:
            raise DataError(f"source='folder' needs a folder: pass data_dir=... or set {DATA_DIR_ENV}.",
                            f"--data folder needs a folder: pass --data-dir /path/to/cifar10 or set {DATA_DIR_ENV}.")
        data = load_folder(data_dir)
    elif source == "sample":
        data = load_sample()
    else:
        try:
            data = _load_keras()
        except DataError:
            if not (auto and sample_if_offline):
                raise
            # "auto" was not a request for the download: go on (e.g. a notebook's "Run all") on the sample, and say so
            print(f"NOTICE: no network and no local copy ({DATA_DIR_ENV} unset), so this uses the shipped SAMPLE of "
                  "CIFAR-10 (1,000 training, 500 test images): every accuracy here is of that sample, not of CIFAR-10.")
            data, fell_back = load_sample(), True
    if verbose:
        described = data.describe()
        if from_env and data.location:  # the reader's own folder is named by its variable, not by this machine's path
            described = described.replace(f" from {data.location}", f" from ${DATA_DIR_ENV}")
        print(f"Loaded {described}.")
        if data.is_sample and not fell_back:
            print(
                "NOTICE: this is a small sample for tests and smoke runs; accuracies on it say nothing "
                "about the paper's. Use source='keras' or a local copy for real training."
            )
    return data


def _load_keras() -> CifarData:
    _tensorflow()
    import keras

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as error:  # keras raises a bare Exception("URL fetch failure ...")
        reason = f"Could not download CIFAR-10 ({type(error).__name__}: {error})."
        layout = "image folders train/<class>/*.jpg and test/<class>/..., or an extracted cifar-10-batches-py"
        raise DataError(
            f"{reason} Without network, use a local copy: set {DATA_DIR_ENV}=/path/to/cifar10 ({layout}) or "
            "pass load_cifar10(source='folder', data_dir=...); or the small shipped sample: source='sample' in "
            "Python, or start Jupyter with RESNET_DATA=sample for the notebooks.",
            f"{reason} Without network, use a local copy with --data-dir /path/to/cifar10 ({layout}), "
            "or try things out on the small shipped sample with --data sample.",
        ) from error
    return CifarData(x_train, y_train.reshape(-1), x_test, y_test.reshape(-1), "keras", "~/.keras/datasets")


ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")


def read_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The four CIFAR arrays (:data:`ARRAY_KEYS`) of an ``.npz`` file; ``DataError`` naming the
    file if it is missing, damaged or lacks one of them."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [k for k in ARRAY_KEYS if k not in archive.files]
            if missing:
                raise DataError(f"{path} lacks the array(s) {missing}; a CIFAR .npz needs {', '.join(ARRAY_KEYS)} (it has {archive.files}).")
            return {k: archive[k] for k in ARRAY_KEYS}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        if isinstance(error, DataError):
            raise
        raise DataError(f"Cannot read {path} ({type(error).__name__}: {error}); the file is damaged or not an .npz.") from error


def load_sample() -> CifarData:
    """The sample shipped with the package: 100 training and 50 test images per class."""
    arrays = read_arrays(SAMPLE_PATH)
    return CifarData(
        arrays["x_train"], arrays["y_train"].astype(np.int64),
        arrays["x_test"], arrays["y_test"].astype(np.int64), "sample", str(SAMPLE_PATH.name),
    )


def load_folder(data_dir: str | os.PathLike, cache: bool = True) -> CifarData:
    """Load a local copy: ``train/<class>/`` + ``test/<class>/`` image folders or ``cifar-10-batches-py``.

    Image folders come back in class order (all airplanes, then all automobiles, ...); use
    :func:`balanced_subset` to take a fair part of them.

    Decoded image folders are cached as a ``.npz`` (under ``RESNET_CACHE_DIR`` or
    ``~/.cache/resnet_utils``), keyed by the folder's path and every file's name, size,
    modification time, inode and change time (not its content, which would mean reading every
    file), so an edited image is decoded again. The cache stores a checksum of its arrays and is
    checked against it and against the labels the class folders give: a damaged or edited cache is
    rebuilt with a notice naming it.
    """
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        raise DataError(
            f"CIFAR-10 folder {str(root)!r} {what}. Pass the folder that holds train/ and test/ "
            "(or cifar-10-batches-py), or use source='keras' to download or source='sample'.",
            f"CIFAR-10 folder {str(root)!r} {what}. Pass the folder that holds train/ and test/ "
            "(or cifar-10-batches-py) with --data-dir, or use --data keras to download or --data sample.",
        )
    for candidate in (root, root / "cifar-10-batches-py"):
        if (candidate / "data_batch_1").exists():
            return _load_batches(candidate)
    files = {split: _list_split(root, split) for split in ("train", "test")}
    for split, entries in files.items():
        if not entries:
            raise DataError(
                f"{root / split} has class folders but no images in any of them; put the {split} images in "
                f"{split}/<class>/ as .jpg or .png files."
            )
    stamps = [(path, *_file_stamp(path)) for entries in files.values() for path, _ in entries]
    key = hashlib.sha1(repr((str(root.resolve()), stamps)).encode()).hexdigest()[:16]
    cache_file = Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "resnet_utils")) / f"cifar10-{key}.npz"
    expected = {split: [label for _, label in entries] for split, entries in files.items()}
    if cache and cache_file.is_file():
        try:
            arrays = _read_cache(cache_file, expected)
            return CifarData(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], "folder", str(root))
        except DataError as error:
            print(f"NOTICE: the decoded-image cache is damaged ({error}); decoding the images again.")
    arrays = {}
    for split, entries in files.items():
        arrays[f"x_{split}"] = np.stack([_read_image(path) for path, _ in entries])
        arrays[f"y_{split}"] = np.array([label for _, label in entries], dtype=np.int64)
    if cache:
        _write_cache(cache_file, arrays)
    return CifarData(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], "folder", str(root))


def _file_stamp(path: str) -> tuple[int, int, int, int]:
    """What the cache key knows of a file without reading it: size, modification time, and the
    inode and change time, which any write changes (``touch -d`` can reset the modification time
    of an image edited in place, not its change time)."""
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns


def _arrays_checksum(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for key in ARRAY_KEYS:
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}{array.dtype.str}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def _read_cache(cache_file: Path, expected_labels: dict[str, list[int]]) -> dict[str, np.ndarray]:
    """The arrays of a decoded-image cache, after checking them against the checksum stored with
    them and against the labels the folder's class names give; ``DataError`` naming the cache file."""
    arrays = read_arrays(cache_file)
    try:
        with np.load(cache_file, allow_pickle=False) as archive:
            stored = str(archive["checksum"]) if "checksum" in archive.files else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        stored = None
    if stored != _arrays_checksum(arrays):
        raise DataError(f"the cache file {cache_file} does not match the checksum stored in it")
    for split, labels in expected_labels.items():
        check_arrays(arrays[f"x_{split}"], arrays[f"y_{split}"], what=f"the cache file {cache_file}")
        if arrays[f"y_{split}"].tolist() != labels:
            raise DataError(f"the cache file {cache_file} holds other {split} labels than the folder's class folders")
    return arrays


def _write_cache(cache_file: Path, arrays: dict[str, np.ndarray]) -> None:
    """Store decoded images with their checksum; a cache that cannot be written only costs time
    (one notice), it never stops loading."""
    partial = cache_file.with_name(cache_file.stem + ".partial.npz")
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        partial.unlink(missing_ok=True)  # never write through a link left at the temporary name
        np.savez(partial, checksum=np.array(_arrays_checksum(arrays)), **arrays)
        os.replace(partial, cache_file)
    except OSError as error:
        try:
            partial.unlink(missing_ok=True)
        except OSError:
            pass
        print(f"NOTICE: cannot write the decoded-image cache {cache_file} ({error.strerror or error}); "
              f"the images are decoded again next time. Set {CACHE_ENV} to a folder you can write to.")


def _list_split(root: Path, split: str) -> list[tuple[str, int]]:
    split_dir = root / split
    if not split_dir.is_dir():
        raise DataError(
            f"{str(root)!r} has no {split}/ folder. A CIFAR-10 image folder needs train/<class>/ and "
            f"test/<class>/ with the classes {', '.join(CLASS_NAMES)}."
        )
    found = sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = sorted(set(found) - set(CLASS_NAMES))
    missing = [c for c in CLASS_NAMES if c not in found]
    if unknown:
        raise DataError(
            f"{split_dir} holds class folder(s) {unknown} that CIFAR-10 does not have; labels must be "
            f"one of {', '.join(CLASS_NAMES)}. Remove or rename them."
        )
    if missing:
        raise DataError(f"{split_dir} lacks the class folder(s) {missing}; every CIFAR-10 class needs one.")
    entries = []
    empty = []
    for label, name in enumerate(CLASS_NAMES):
        count = len(entries)
        for path in sorted((split_dir / name).iterdir()):
            if path.name.startswith("."):
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                raise DataError(
                    f"{path} is not an image file; class folders may hold only {', '.join(IMAGE_SUFFIXES)} "
                    "files. Move it elsewhere."
                )
            entries.append((str(path), label))
        if len(entries) == count:
            empty.append(name)
    if empty and len(empty) < len(CLASS_NAMES):  # all empty: load_folder says so for the whole split
        raise DataError(
            f"{split_dir} has no images in the class folder(s) {empty}; every CIFAR-10 class needs images, or the "
            f"net would learn {len(CLASS_NAMES) - len(empty)} classes only. Put the {split} images of those classes there."
        )
    return entries


def _read_image(path: str) -> np.ndarray:
    """One 32x32 RGB image as uint8 (32, 32, 3); ``DataError`` naming the file otherwise. The size
    is checked before the pixels are decoded, so a decompression bomb is refused unopened."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                mode, size = image.mode, image.size
                if mode == "RGB" and size == (32, 32):
                    image.load()
                    pixels = np.asarray(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise DataError(f"{path} claims to be a huge image ({error}); CIFAR-10 images are 32x32 RGB. Remove it.") from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(f"Cannot read image {path} ({error}); the file is damaged or not an image. Replace or remove it.") from error
    if mode != "RGB" or size != (32, 32):
        raise DataError(
            f"{path} is a {size[0]}x{size[1]} {mode} image; CIFAR-10 images must be 32x32 RGB. "
            "Convert it (e.g. PIL: image.convert('RGB').resize((32, 32))) or remove it."
        )
    return pixels


#: The only globals a CIFAR-10 python batch's pickle may name: numpy's array and dtype
#: reconstruction (``numpy.core`` in the original files, ``numpy._core`` from numpy 2) and the
#: codec that protocol-2 pickles use for bytes. Dicts, lists, bytes, str and ints need none.
BATCH_PICKLE_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
})


class _BatchUnpickler(pickle.Unpickler):
    """An unpickler that builds only what a CIFAR-10 batch holds and refuses every other global
    (``os.system``, ``builtins.eval``, ...) before it can be called."""

    def find_class(self, module: str, name: str):
        if (module, name) not in BATCH_PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which a CIFAR-10 batch never holds")
        return super().find_class(module, name)


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 32, 32, 3) and labels (N,) of one file of an extracted ``cifar-10-batches-py``.

    The pickle is read by :class:`_BatchUnpickler`, so a file that tries to run code is refused
    before anything runs."""
    redo = "Re-extract cifar-10-python.tar.gz, or use another copy."
    try:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()
    except pickle.UnpicklingError as error:
        raise DataError(f"{path} is not a CIFAR-10 python batch (cannot unpickle it: {error}). {redo}") from error
    except Exception as error:  # unpickling garbage raises almost anything
        raise DataError(f"{path} is not a CIFAR-10 python batch (cannot unpickle it: {type(error).__name__}). {redo}") from error
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        keys = sorted(batch)[:6] if isinstance(batch, dict) else type(batch).__name__
        raise DataError(f"{path} is not a CIFAR-10 python batch: it needs the keys b'data' and b'labels' (found {keys}). {redo}")
    try:
        flat = np.asarray(batch[b"data"])
        labels = np.asarray(batch[b"labels"], dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as error:
        raise DataError(f"{path}: its data or labels are not arrays of numbers ({error}). {redo}") from error
    if flat.ndim != 2 or flat.shape[1] != 3 * 32 * 32 or flat.dtype != np.uint8 or len(flat) != len(labels):
        raise DataError(
            f"{path}: data must be N rows of 3072 uint8 pixels with N labels; found data {flat.shape} {flat.dtype} "
            f"and {len(labels)} labels. {redo}"
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CLASS_NAMES)):
        raise DataError(f"{path}: labels must lie in 0..{len(CLASS_NAMES) - 1}; found values from {labels.min()} to {labels.max()}. {redo}")
    return flat.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _load_batches(folder: Path) -> CifarData:
    def read(name: str):
        path = folder / name
        if not path.exists():
            raise DataError(f"{folder} lacks {name}; an extracted cifar-10-batches-py has data_batch_1..5 and test_batch.")
        return _read_batch(path)

    train = [read(f"data_batch_{i}") for i in range(1, 6)]
    x_test, y_test = read("test_batch")
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return CifarData(x_train, y_train, x_test, y_test, "folder", str(folder))


def random_subset(length: int, size: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``size`` of ``length`` items chosen at random (seeded): how
    ``TrainConfig.limit_train`` picks its training images."""
    return np.sort(np.random.default_rng(seed).permutation(length)[:size])


def balanced_subset(labels: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """Indices of ``per_class`` randomly chosen images of each class, in random order.

    Image folders load class by class (all airplanes first), so ``x_test[:500]`` is not a fair
    sample; ``x_test[balanced_subset(y_test, 50)]`` is.
    """
    labels = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False) for c in np.unique(labels)]
    return rng.permutation(np.concatenate(chosen))


def validation_split(labels: np.ndarray, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split training images into (train, validation) indices, the same share of every class in
    the validation part (``fraction=0.1`` of CIFAR-10's 50,000: 500 per class, the paper's 45k/5k).
    The split depends on ``seed`` only, so runs that differ in anything else hold out the same images."""
    labels = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    held_out = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        held_out.append(rng.choice(members, size=int(round(len(members) * fraction)), replace=False))
    validation = np.sort(np.concatenate(held_out))
    return np.setdiff1d(np.arange(len(labels)), validation), validation


def check_arrays(images: np.ndarray, labels: np.ndarray, num_classes: int = 10, what: str = "images") -> None:
    """Raise ``DataError`` unless ``images`` is uint8 (N, 32, 32, 3) and ``labels`` N ints in [0, num_classes)."""
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 4 or images.shape[1:] != IMAGE_SHAPE:
        raise DataError(f"{what} must have shape (N, 32, 32, 3); got {images.shape}. Stack 32x32 RGB images on the first axis.")
    if images.dtype != np.uint8:
        raise DataError(f"{what} must be uint8 pixels 0-255; got dtype {images.dtype}. Pass the raw images, e.g. (x * 255).astype('uint8').")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{what}: labels must be {len(images)} integers (one per image); got shape {labels.shape}. One-hot labels are not accepted.")
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{what}: labels must be integers; got dtype {labels.dtype}.")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"{what}: labels must lie in 0..{num_classes - 1}; found values from {labels.min()} to {labels.max()}.")


def pixel_mean(x_train: np.ndarray) -> np.ndarray:
    """Mean image of the training set, float32 (32, 32, 3) in [0, 1] (the example's per-pixel mean)."""
    return (np.asarray(x_train, dtype=np.float64) / 255.0).mean(axis=0).astype(np.float32)


def pad_crop_flip(images, seed, padding: int = 4):
    """The standard CIFAR augmentation, for one float image (H, W, C) or a batch (N, H, W, C): zero-pad
    ``padding`` pixels on each side, crop a random window of the original size, flip left-right with
    probability 1/2, independently per image. ``seed`` is a stateless seed (shape (2,) int), so the
    same seed always gives the same result.

    The whole batch is done in a few vectorised operations (one gather for all the crops), not one
    call per image."""
    tf = _tensorflow()

    images = tf.convert_to_tensor(images)
    single = images.shape.rank == 3
    batch = images[tf.newaxis] if single else images
    count, height, width = tf.shape(batch)[0], batch.shape[1], batch.shape[2]
    seed = tf.cast(seed, tf.int64)
    offsets = tf.random.stateless_uniform([count, 2], seed=seed, maxval=2 * padding + 1, dtype=tf.int32)
    flips = tf.random.stateless_uniform([count], seed=tf.stack([seed[1], seed[0]]), maxval=2, dtype=tf.int32)
    padded = tf.pad(batch, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    rows = offsets[:, :1] + tf.range(height)[tf.newaxis]  # (N, H): the rows each crop keeps
    columns = offsets[:, 1:] + tf.range(width)[tf.newaxis]  # (N, W)
    columns = tf.where(flips[:, tf.newaxis] == 1, tf.reverse(columns, axis=[1]), columns)  # a flip reads them backwards
    cropped = tf.gather(tf.gather(padded, rows, axis=1, batch_dims=1), columns, axis=2, batch_dims=1)
    return cropped[0] if single else cropped


def make_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    mean: np.ndarray,
    batch_size: int = 128,
    training: bool = False,
    seed: int = 0,
    augment: bool | None = None,
    epoch=None,
):
    """A ``tf.data.Dataset`` of (float32 image - mean, int label) batches.

    Training datasets are shuffled every pass and augmented (pad-crop-flip) unless ``augment=False``;
    evaluation datasets are neither. Each training pass draws one permutation of the images and then
    gathers, augments and normalises a whole batch at a time, in TensorFlow's graph, while the model
    works on the previous batch (prefetch).

    The randomness of a pass (its order, crops and flips) is a function of ``(seed, epoch)`` alone.
    ``epoch`` is a ``tf.Variable`` holding the number of the epoch about to start; ``training.train``
    sets it at the start of every epoch, so a run resumed at epoch k trains on exactly the batches an
    uninterrupted run would. Without ``epoch``, the dataset counts its own passes from 0.
    """
    tf = _tensorflow()

    check_arrays(images, labels)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise DataError(f"batch_size must be a positive integer; got {batch_size!r}.")
    mean = np.asarray(mean, dtype=np.float32)
    if mean.shape != IMAGE_SHAPE:
        raise DataError(f"mean must be a (32, 32, 3) mean image (see pixel_mean); got shape {mean.shape}.")
    augment = training if augment is None else augment
    labels = np.asarray(labels).reshape(-1).astype(np.int32)
    mean_tensor = tf.constant(mean)

    def normalise(batch):
        return tf.cast(batch, tf.float32) / 255.0

    if not training:
        dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)
        if augment:
            dataset = dataset.enumerate().map(
                lambda i, pair: (pad_crop_flip(normalise(pair[0]), tf.stack([tf.cast(seed, tf.int64), i])) - mean_tensor, pair[1])
            )
        else:
            dataset = dataset.map(lambda x, y: (normalise(x) - mean_tensor, y))
        return dataset.prefetch(tf.data.AUTOTUNE)

    image_tensor, label_tensor = tf.constant(images), tf.constant(labels)
    count = len(images)
    if epoch is None:
        passes = tf.Variable(-1, dtype=tf.int64, trainable=False)  # this dataset's own pass counter
        current_epoch = lambda: passes.assign_add(1)  # noqa: E731
    else:
        current_epoch = lambda: tf.cast(epoch.read_value(), tf.int64)  # noqa: E731

    def one_pass(_):
        pass_seed = tf.stack([tf.constant(seed, tf.int64), current_epoch()])
        order = tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), seed=pass_seed)
        # Each batch's own stateless seed: (hash of the pass seed, batch number).
        batch_key = tf.cast(tf.random.experimental.stateless_fold_in(pass_seed, 1)[0], tf.int64)
        index_batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size).enumerate()

        def load(number, indices):
            batch = normalise(tf.gather(image_tensor, indices))
            if augment:
                batch = pad_crop_flip(batch, tf.stack([batch_key, number]))
            return batch - mean_tensor, tf.gather(label_tensor, indices)

        return index_batches.map(load)

    steps = -(-count // batch_size)
    dataset = tf.data.Dataset.range(1).flat_map(one_pass).apply(tf.data.experimental.assert_cardinality(steps))
    return dataset.prefetch(tf.data.AUTOTUNE)
