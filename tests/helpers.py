"""Small shared pieces of the tests (pytest puts this folder on sys.path)."""

from resnet_utils.training import TrainConfig


def small_config(out, **overrides) -> TrainConfig:
    """A seconds-long run on the shipped sample: ResNet8, 2 epochs of 96 images at batch 32."""
    values = dict(out=str(out), n=1, version=1, schedule="fast", epochs=2, batch_size=32, data="sample",
                  limit_train=96, verbose=0)
    values.update(overrides)
    return TrainConfig(**values)
