"""Webhook endpoints file, filters and the retry schedule: pure, no sockets."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from common.errors import ConfigurationError
from webhooks.endpoints import (
    Endpoint,
    Endpoints,
    add_endpoint,
    endpoints_file,
    remove_endpoint,
)
from webhooks.schedule import max_attempts, next_attempt_ms

SCHEDULE_S = (10.0, 60.0, 300.0)


def test_the_first_retry_waits_the_first_delay():
    assert next_attempt_ms(1, 1_000, SCHEDULE_S) == 11_000


def test_each_later_retry_waits_the_next_delay():
    assert [next_attempt_ms(n, 0, SCHEDULE_S) for n in (1, 2, 3)] == [10_000, 60_000, 300_000]


def test_after_the_attempt_following_the_last_delay_the_delivery_is_given_up():
    assert max_attempts(SCHEDULE_S) == 4
    assert next_attempt_ms(4, 0, SCHEDULE_S) is None


def test_sub_second_delays_are_kept_in_milliseconds():
    assert next_attempt_ms(1, 0, (0.05,)) == 50


def test_an_attempt_count_below_one_is_a_mistake():
    with pytest.raises(ValueError, match="at least 1"):
        next_attempt_ms(0, 0, SCHEDULE_S)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "webhooks.json"


def test_an_added_endpoint_is_listed_with_its_secret_in_a_0600_file(path: Path):
    added = add_endpoint(path, "https://shop.example/hooks", endpoint_id="shop")
    assert added.secret.startswith("whsec_")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert Endpoints.load(path).endpoints == (added,)


def test_an_endpoint_without_an_id_gets_one(path: Path):
    assert add_endpoint(path, "http://shop.example:9000/").id.startswith("ep-")


def test_listing_never_shows_a_secret(path: Path):
    added = add_endpoint(path, "https://shop.example/hooks", endpoint_id="shop")
    assert added.secret not in json.dumps(added.public())
    assert added.secret not in repr(added)


def test_a_removed_endpoint_is_gone_and_the_others_stay(path: Path):
    add_endpoint(path, "https://a.example/", endpoint_id="a")
    kept = add_endpoint(path, "https://b.example/", endpoint_id="b")
    remove_endpoint(path, "a")
    assert Endpoints.load(path).endpoints == (kept,)


def test_removing_an_unknown_endpoint_is_a_clear_error(path: Path):
    with pytest.raises(ConfigurationError, match="no webhook endpoint 'nope'"):
        remove_endpoint(path, "nope")


def test_an_endpoint_id_is_unique(path: Path):
    add_endpoint(path, "https://a.example/", endpoint_id="a")
    with pytest.raises(ConfigurationError, match="exists already"):
        add_endpoint(path, "https://b.example/", endpoint_id="a")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://shop.example/",
        "file:///etc/passwd",
        "shop.example/hooks",
        "https://",
        "javascript:alert(1)",
        "https://user:pw@shop.example/",
        "http://shop.example:port/",
    ],
)
def test_anything_but_an_http_or_https_url_is_refused(path: Path, url: str):
    with pytest.raises(ConfigurationError, match="URL"):
        add_endpoint(path, url)
    assert not path.exists()


@pytest.mark.parametrize(
    ("url", "category"),
    [
        ("http://127.0.0.1:9000/", "loopback"),
        ("http://127.1/", "loopback"),
        ("http://2130706433/", "loopback"),
        ("http://0x7f000001/", "loopback"),
        ("http://0177.0.0.1/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("https://10.0.0.5/hooks", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://0.0.0.0/", "unspecified"),
    ],
)
def test_a_url_spelling_a_forbidden_address_is_refused_when_added(
    path: Path, url: str, category: str
):
    with pytest.raises(ConfigurationError, match=f"{category} addresses are not allowed"):
        add_endpoint(path, url)
    assert not path.exists()


def test_a_loopback_url_is_added_with_the_private_networks_opt_in(path: Path):
    added = add_endpoint(path, "http://127.0.0.1:9000/", allow_private_networks=True)
    assert Endpoints.load(path).endpoints == (added,)


def test_the_metadata_address_is_refused_even_with_the_opt_in(path: Path):
    with pytest.raises(ConfigurationError, match="link-local addresses are not allowed"):
        add_endpoint(path, "http://169.254.169.254/", allow_private_networks=True)


def test_a_name_is_added_whatever_it_resolves_to_now_because_sending_judges_it(path: Path):
    # localhost resolves to loopback: the sender refuses it at each attempt, not `add`
    assert add_endpoint(path, "http://localhost:9000/", endpoint_id="local").id == "local"


@pytest.mark.parametrize(
    ("channels", "statuses", "match"),
    [(["cash"], [], "unknown channel 'cash'"), ([], ["done"], "unknown status 'done'")],
)
def test_unknown_filters_are_refused(
    path: Path, channels: list[str], statuses: list[str], match: str
):
    with pytest.raises(ConfigurationError, match=match):
        add_endpoint(path, "https://a.example/", channels=channels, statuses=statuses)


@pytest.mark.parametrize(
    "content", ["not json", "{}", '{"endpoints": [{"id": "a"}]}', '{"endpoints": 3}']
)
def test_a_malformed_file_is_a_configuration_error(path: Path, content: str):
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(ConfigurationError, match="cannot read webhook endpoints"):
        Endpoints.load(path)


def test_a_missing_file_means_no_endpoints(path: Path):
    assert Endpoints.load(path).endpoints == ()


def test_an_endpoint_without_filters_matches_every_result():
    endpoint = Endpoint("a", "https://a.example/", "whsec_x")
    assert endpoint.matches("card", "succeeded")
    assert endpoint.matches("digital_currency", "failed")


def test_filters_on_channel_and_status_both_apply():
    endpoint = Endpoint(
        "a", "https://a.example/", "whsec_x", channels=("card",), statuses=("declined", "failed")
    )
    assert endpoint.matches("card", "declined")
    assert not endpoint.matches("card", "succeeded")
    assert not endpoint.matches("digital_currency", "declined")


def test_matching_picks_the_endpoints_whose_filters_accept_the_result():
    card = Endpoint("card", "https://a.example/", "whsec_x", channels=("card",))
    anything = Endpoint("all", "https://b.example/", "whsec_x")
    assert Endpoints((card, anything)).matching("digital_currency", "succeeded") == (anything,)


def test_the_endpoints_file_is_read_again_when_it_changes(path: Path):
    watched = endpoints_file(path)
    assert watched.current().endpoints == ()
    added = add_endpoint(path, "https://a.example/", endpoint_id="a")
    assert watched.current().endpoints == (added,)
