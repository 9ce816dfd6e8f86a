from apptest_helpers import assert_clean, chart_specs, open_dashboard

PAGE = "pages/activation_lab.py"


def _lab(**widgets):
    at = open_dashboard(page=PAGE)
    for key, value in widgets.items():
        at.session_state[key] = value
    return at.run()


def test_two_activations_side_by_side():
    at = _lab(al_activations=["relu", "tanh"], al_epochs=5, al_n_samples=100)
    assert_clean(at)
    titles = [s.get("title") for s in chart_specs(at)]
    assert titles.count("Decision boundary") == 2
    assert "relu and its slope" in titles and "tanh and its slope" in titles
    assert "Loss per epoch" in titles
    labels = [m.label for m in at.metric]
    assert labels.count("Test accuracy") == 2
    table = at.dataframe[0].value
    assert set(table.activation) == {"relu", "tanh"} and len(table) == 4  # 2 activations x 2 layers


def test_fewer_than_two_activations_is_a_warning():
    at = _lab(al_activations=["relu"])
    assert not at.exception
    assert any("at least two" in w.value for w in at.warning)


def test_preset_fills_the_controls_and_reports_its_figure():
    at = open_dashboard(page=PAGE)
    at.sidebar.selectbox(key="al_preset").set_value("nonlinearity").run()
    assert_clean(at)
    assert at.session_state["al_activations"] == ["linear", "tanh", "relu"]
    assert at.session_state["al_epochs"] == 60
    (info,) = at.info
    assert "Nonlinearity" in info.value and "Measured test accuracy: linear:" in info.value


def test_digits_show_confusion_matrices():
    at = _lab(al_activations=["relu", "elu"], al_dataset="digits", al_epochs=2, al_n_samples=300, al_batch=32)
    assert_clean(at)
    titles = [s.get("title") for s in chart_specs(at)]
    assert titles.count("Confusion matrix (test)") == 2
    assert not [b for b in at.button if b.label == "Open in Playground"]


def test_open_in_playground_carries_the_config():
    at = _lab(al_activations=["relu", "tanh"], al_epochs=5, al_n_samples=100)
    [b for b in at.button if b.key == "al_open_tanh"][0].click().run()
    assert_clean(at)
    assert at.session_state["pg_activation"] == "tanh" and at.session_state["pg_epochs"] == 5
    assert at.title[0].value == "Playground"
    assert [m.label for m in at.metric][:4] == ["Train loss", "Test loss", "Train accuracy", "Test accuracy"]


def test_diverging_activation_marks_only_its_column():
    at = _lab(al_activations=["linear", "sigmoid"], al_optimizer="sgd", al_lr=100.0, al_epochs=3,
              al_n_samples=100)
    assert not at.exception
    assert [w.value for w in at.warning if not w.value.startswith("This model did not learn")] == [
        "Diverged at epoch 1."]
    assert [m.label for m in at.metric].count("Test accuracy") == 1


def test_six_activations_wrap_into_fixed_width_cards_that_hold_their_charts():
    """Issue 12 item 2: six columns cropped five of six decision boundaries, cut metrics to '3…' and overflowed
    the gradient panels; cards of a fixed width now wrap, and every chart fits its card."""
    from models.activation_lab import gradient_ratio
    from ui.activation_lab_views import CARD_WIDTH

    six = ["linear", "relu", "tanh", "elu", "sigmoid", "gelu"]
    at = _lab(al_activations=six, al_epochs=5, al_n_samples=100)
    assert_clean(at)
    specs = chart_specs(at)
    boundaries = [s for s in specs if s.get("title") == "Decision boundary"]
    assert len(boundaries) == 6 and all(s["width"] <= CARD_WIDTH for s in boundaries)
    (gradients,) = [s for s in specs if s.get("title") == "Gradient norm per layer (input layer first)"]
    assert gradients["columns"] == 3
    values = [m.value for m in at.metric]
    assert len(values) == 12 and all(len(v) <= 7 for v in values), values
    runs = {r.config.activation: r for r in at.session_state["trained_runs"].values()}
    text = " ".join(c.value for c in at.caption)
    assert "Final test loss: " + ", ".join(f"{a} {runs[a].history.test_loss[-1]:.3g}" for a in six) in text
    assert "gradient ratio: " + ", ".join(f"{a} {gradient_ratio(runs[a]):.2g}" for a in six) in text
