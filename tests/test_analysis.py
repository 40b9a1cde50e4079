"""Tables of parameters, MACs, feature maps and receptive fields."""

import pytest

from resnet_utils import analysis, models


@pytest.fixture(scope="module")
def resnet20():
    return models.build_resnet(3, 1)


def test_resnet20_macs_and_stage_table(resnet20):
    # 3x3 convs on 32/16/8 maps, two projections, the classifier: 40,813,184 MACs per image.
    assert analysis.total_macs(resnet20) == 40_813_184
    table = analysis.stage_table(resnet20)
    assert list(table.index) == ["conv1", "conv2", "conv3", "conv4", "head", "total"]
    assert table.loc["total", "parameters"] == resnet20.count_params()
    assert table.loc["total", "weighted_layers"] == 20  # the "20" of ResNet20
    assert table.loc["conv1", "macs"] == 32 * 32 * 3 * 3 * 3 * 16
    assert table.loc["conv4", "output"] == "8 x 8 x 64"


def test_feature_maps_and_receptive_field(resnet20):
    maps = analysis.feature_map_table(resnet20)
    assert maps.loc[["conv2", "conv3", "conv4"], "height"].tolist() == [32, 16, 8]
    assert maps.loc[["conv2", "conv3", "conv4"], "channels"].tolist() == [16, 32, 64]
    # stem 3, then 3x3 convs: +2 each at stride 1, +4 at stride 2 (jump 2), +8 at stride 4 ...
    assert maps.loc["conv1", "receptive_field"] == 3
    assert maps.loc["conv2", "receptive_field"] == 3 + 6 * 2
    assert analysis.receptive_field(resnet20) == 81


def test_summary_depths_and_imagenet_stem_shrinking_the_map():
    table = analysis.summarize({
        "ResNet56": models.build_resnet(9, 1),
        "ResNet18": models.resnet18(),
        "ResNet18 (CIFAR stem)": models.resnet18("cifar"),
    })
    assert table.loc["ResNet56", "weighted_layers"] == 56
    assert table.loc["ResNet56", "macs"] == 125_747_840
    assert table.loc["ResNet18", "weighted_layers"] == 18
    assert table.loc["ResNet18", "last_feature_map"] == "1x1"
    assert table.loc["ResNet18 (CIFAR stem)", "last_feature_map"] == "4x4"
    assert table.loc["ResNet18 (CIFAR stem)", "macs"] > 10 * table.loc["ResNet18", "macs"]


def test_layer_table_rows_match_the_model(resnet20):
    table = analysis.layer_table(resnet20)
    assert len(table) == len(resnet20.layers)
    assert table["parameters"].sum() == resnet20.count_params()
    row = table.set_index("layer").loc["conv3_block1_1_conv"]
    assert row["output_shape"] == (16, 16, 32) and row["macs"] == 16 * 16 * 9 * 16 * 32
