"""The default data set: simulated once into the cache, then reused."""

from cvae_tf import default_data, event_files, simulator


def test_default_data_is_simulated_once_and_cached(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CVAE_TF_CACHE", str(tmp_path / "cache"))
    path = default_data.default_data_path(num_events=200)
    assert path.parent == tmp_path / "cache"
    assert str(path) in capsys.readouterr().out  # the first run says where it is
    assert len(event_files.load_events(path)) == 200

    def must_not_simulate(*args, **kwargs):
        raise AssertionError("the cached default data set was simulated again")

    monkeypatch.setattr(simulator, "simulate_events", must_not_simulate)
    assert default_data.default_data_path(num_events=200) == path
