"""What `paymq topology status` concludes from the management API's answers (pure parts)."""

from __future__ import annotations

from common.amqp.management import (
    ClusterNode,
    QueueReplicas,
    management_urls,
    replication_shortfall,
    vhost_of,
    wanted_members,
)

A, B, C = "rabbit@a", "rabbit@b", "rabbit@c"


def queue(
    members: tuple[str, ...], online: tuple[str, ...], leader: str | None = A
) -> QueueReplicas:
    return QueueReplicas("paymq.work.card", "quorum", leader, members, online)


def test_a_queue_with_every_member_online_is_healthy():
    healthy = queue((A, B, C), (A, B, C))
    assert healthy.problems(3) == []
    assert not healthy.at_risk


def test_a_member_down_is_said_but_the_queue_still_serves():
    one_down = queue((A, B, C), (A, B))
    assert one_down.problems(3) == ["1 of 3 members offline"]
    assert not one_down.at_risk


def test_a_minority_online_is_a_lost_quorum():
    lost = queue((A, B, C), (A,), leader=None)
    problems = lost.problems(3)
    assert problems[0].startswith("quorum lost: 1 of 3 members online")
    assert "no leader" in problems
    assert lost.at_risk


def test_fewer_members_than_wanted_is_under_replication():
    assert queue((A,), (A,)).problems(3) == ["1 members, 3 wanted"]


def test_a_classic_queue_is_not_replicated():
    classic = QueueReplicas("paymq.work.card", "classic", None, (), ())
    assert classic.at_risk
    assert "not replicated" in classic.problems(1)[0]


def test_members_wanted_follow_the_setting_or_rabbitmqs_default_and_never_pass_the_cluster():
    assert wanted_members(None, 1) == 1
    assert wanted_members(None, 5) == 3
    assert wanted_members(5, 7) == 5
    assert wanted_members(5, 3) == 3


def test_a_cluster_smaller_than_the_replicas_asked_for_is_warned_about():
    one = [ClusterNode(A, True)]
    three = [ClusterNode(n, True) for n in (A, B, C)]
    assert replication_shortfall(None, one) is None
    assert replication_shortfall(3, three) is None
    warning = replication_shortfall(3, one)
    assert warning is not None
    assert "PAYMQ_QUORUM_REPLICAS is 3 but the cluster has 1 node" in warning


def test_the_management_api_is_looked_for_beside_each_node_with_the_brokers_credentials():
    address = "amqp://u:p%2C1@a:5672/%2F,amqps://u:p%2C1@b:5671/prod"
    assert management_urls(address, None) == ("http://u:p%2C1@a:15672", "https://u:p%2C1@b:15671")
    assert management_urls(address, "https://m:1/ , https://n:2/") == ("https://m:1", "https://n:2")
    assert vhost_of(address) == "/"
    assert vhost_of("amqp://a/prod") == "prod"
    assert vhost_of("amqp://a") == "/"
