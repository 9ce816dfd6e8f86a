"""The router's shared frame: the sidebar's list of trained models survives a page that stops early."""

from apptest_helpers import labels_in, open_dashboard


def test_models_list_stays_in_the_sidebar_when_a_page_stops_early():
    """The Activation Lab stops (after a warning) with fewer than two activations; st.stop() used to stop
    the router too, so the shared sidebar drawn after the page vanished."""
    at = open_dashboard(query={"epochs": "5", "n_samples": "100"})  # the Playground trains one model
    assert "Models trained this session: 1" in labels_in(at.sidebar)
    at.switch_page("pages/activation_lab.py").run()  # trains its three default activations
    assert "Models trained this session: 4" in labels_in(at.sidebar)
    at.sidebar.multiselect(key="al_activations").set_value(["relu"]).run()
    assert [w.value for w in at.warning] == ["Pick at least two activations to compare."]
    assert not at.exception
    assert "Models trained this session: 4" in labels_in(at.sidebar)


def test_sidebar_names_models_by_what_they_are():
    at = open_dashboard(query={"epochs": "5", "n_samples": "100"})
    captions = [c.value for c in at.sidebar.caption]
    assert any(c.startswith("circle · 2x8 tanh · adam 0.03 · ") and c.endswith("· completed") for c in captions)
