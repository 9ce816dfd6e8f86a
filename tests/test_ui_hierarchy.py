"""The Feature Hierarchy's captions state what the numbers show, including where the textbook pattern fails."""

from models.evidence import StageEvidence
from ui.hierarchy_evidence import evidence_summary, evidence_table


def _stages(probes, osi, selectivity, layers=("conv_1", "conv_3", "conv_4"), fields=(3, 18, 38)):
    return [StageEvidence(stage, layer, rf, p, o, s) for stage, layer, rf, p, o, s in
            zip(("early", "middle", "late"), layers, fields, probes, osi, selectivity, strict=True)]


TRAINED = _stages((0.36, 0.96, 0.99), (0.22, 0.72, 0.59), (0.03, 0.08, 0.44))
UNTRAINED = _stages((0.27, 0.41, 0.40), (0.41, 0.16, 0.17), (0.06, 0.05, 0.06))


def test_summary_quotes_the_measured_numbers():
    text = " ".join(evidence_summary(TRAINED, UNTRAINED, 0.26, learned=True, kernel_size=3))
    assert "more linearly readable with depth: probe accuracy early 36%, middle 96%, late 99% (chance 26%)" in text
    assert "training added +59% at the late stage" in text
    assert "3x3 px (early), 18x18 px (middle), 38x38 px (late)" in text
    assert "Training made the middle stage's filters orientation-tuned (+0.56)" in text
    assert "The early filters did not become more selective than random ones: a 3x3 kernel" in text
    assert "more class-selective than early ones (0.44 against 0.03)" in text
    assert "did not learn" not in text


def test_summary_says_when_the_pattern_is_missing():
    flat = _stages((0.30, 0.28, 0.27), (0.5, 0.2, 0.1), (0.05, 0.04, 0.03))
    lines = evidence_summary(flat, UNTRAINED, 0.25, learned=False, kernel_size=5)
    text = " ".join(lines)
    assert lines[0].startswith("This model did not learn")
    assert "Probe accuracy does not rise with depth here: early 30%, middle 28%, late 27%" in text
    assert "not more class-selective than early ones here (0.03 against 0.05)" in text
    assert "3x3 kernel" not in text  # the Sobel bound is stated only for 3x3 kernels


def test_table_has_a_column_per_stage_and_both_epochs():
    table = evidence_table(TRAINED, UNTRAINED, 20)
    assert list(table.columns) == ["early (conv_1)", "middle (conv_3)", "late (conv_4)"]
    assert list(table.loc["probe accuracy, epoch 20"]) == ["36.0%", "96.0%", "99.0%"]
    assert list(table.loc["orientation selectivity, epoch 0"]) == ["0.41", "0.16", "0.17"]


def test_sidebar_values_round_trip_every_setting_the_sidebar_can_express():
    """The inverse of the sidebar (ui.hierarchy.sidebar_values): the values rebuild the same config key, for the
    recipe's CNN and for settings changed one at a time."""
    from models.recipes import DEFAULT_CNN
    from ui.hierarchy import _config_from, sidebar_values

    variants = [DEFAULT_CNN, DEFAULT_CNN.replace(dataset="digits", n_samples=200, conv_filters=(4, 8)),
                DEFAULT_CNN.replace(conv_filters=(32, 64, 64, 64, 64, 64), kernel_size=5, batch_norm=False),
                DEFAULT_CNN.replace(activation="tanh", optimizer="sgd", learning_rate=0.03, lr_schedule="constant",
                                    epochs=1, batch_size=128)]
    for config in variants:
        values = sidebar_values(config)
        assert values is not None, config
        assert _config_from(values).key() == config.key()


def test_sidebar_values_refuse_what_the_sidebar_cannot_set():
    from models.recipes import DEFAULT_CNN
    from ui.hierarchy import sidebar_values

    refused = [DEFAULT_CNN.replace(architecture="mlp", hidden_layers=(16,)),
               DEFAULT_CNN.replace(architecture="resnet", conv_filters=(16, 16, 16)),
               DEFAULT_CNN.replace(conv_filters=(16, 16, 16)),  # does not double per block
               DEFAULT_CNN.replace(n_samples=250),  # off the slider's steps of 100
               DEFAULT_CNN.replace(learning_rate=0.002), DEFAULT_CNN.replace(epochs=80),
               DEFAULT_CNN.replace(seed=3), DEFAULT_CNN.replace(l2=1e-4)]  # fields the sidebar does not have
    assert [sidebar_values(c) for c in refused] == [None] * len(refused)
