"""GET /metrics: what an operator's Prometheus scrapes."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from storage.models import Outbox
from tests.conftest import SimChat


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_metrics_count_requests_latency_outbox_and_lease(app_client, chat: SimChat, seeded) -> None:
    await chat.say("张明", "签到")
    await chat.say("钱志强", "广播 下周二停课一次", school=None)
    await chat.say("钱志强", "确认", school=None)
    await app_client.post("/sim/api/send", data=b"not json")  # a 400
    await app_client.get("/no/such/page")  # a 404
    await app_client.get("/sim/api/send")  # a 405: the path exists, the method does not
    await app_client.get("/", allow_redirects=False)  # a 302 raised by the handler
    resp = await app_client.get("/metrics")
    assert resp.status == 200 and resp.content_type == "text/plain"
    got = samples(await resp.text())
    assert got[("yanxiu_http_requests_total", (("endpoint", "/sim/api/send"), ("status", "200")))] == 3
    assert got[("yanxiu_http_requests_total", (("endpoint", "/sim/api/send"), ("status", "400")))] == 1
    assert got[("yanxiu_http_requests_total", (("endpoint", "unmatched"), ("status", "404")))] == 1
    assert got[("yanxiu_http_requests_total", (("endpoint", "unmatched"), ("status", "405")))] == 1
    assert got[("yanxiu_http_requests_total", (("endpoint", "/"), ("status", "302")))] == 1
    assert got[("yanxiu_handler_seconds_count", (("verb", "checkin"),))] == 1
    queued = sum(v for (name, labels), v in got.items() if name == "yanxiu_outbox_messages"
                 and ("route", "sim") in labels)
    async with seeded.sessions() as s:
        stored = await s.scalar(select(func.count()).select_from(Outbox))
        broadcasts = await s.scalar(select(func.count()).where(Outbox.kind == "broadcast"))
    assert broadcasts == 2  # one per bound school group
    assert queued == stored  # the scheduler's own sends are counted too
    assert any(name == "yanxiu_lease_holder" for name, _ in got)


def test_hot_counters_match_prometheus_clients_own_histogram_and_counter() -> None:
    """The plain per-request counters export exactly what prometheus_client's own
    Histogram and Counter would for the same observations."""
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

    from bot.metrics import LATENCY_BUCKETS, Metrics

    ours = Metrics()
    reference = CollectorRegistry()
    hist = Histogram("yanxiu_handler_seconds", "h", ["verb"], registry=reference, buckets=LATENCY_BUCKETS)
    reqs = Counter("yanxiu_http_requests", "r", ["endpoint", "status"], registry=reference)
    values = [0.0, 0.0005, 0.001, 0.0010001, 0.0025, 0.003, 0.05, 0.7, 2.5, 3.0, 120.0]
    for i, v in enumerate(values):
        verb = "checkin" if i % 3 else "progress"
        ours.observe_handler(verb, v)
        hist.labels(verb).observe(v)
    for endpoint, status in [("/dingtalk/callback", 200)] * 3 + [("unmatched", 404), ("/dingtalk/callback", 401)]:
        ours._hot.count(endpoint, status)
        reqs.labels(endpoint, str(status)).inc()

    def wanted(text: str) -> dict[tuple[str, tuple], float]:
        return {k: v for k, v in samples(text).items()
                if k[0].startswith(("yanxiu_handler_seconds_", "yanxiu_http_requests_total"))}

    expected = wanted(generate_latest(reference).decode())
    got = wanted(ours.render().decode())
    assert got == {k: v for k, v in expected.items() if k in got}
    assert set(expected) - set(got) <= {k for k in expected if k[0].endswith("_created")}
    assert got[("yanxiu_handler_seconds_count", (("verb", "checkin"),))] == 7
