"""The MQTT adapter against a real Mosquitto: what a connect sends at once must all get through,
whatever the outage queue's size."""
import time

from edge_app import config as config_mod, discovery
from edge_app.mqtt import Publisher

LABELS = [f"logo {i}" for i in range(27)]  # Flickr Logos 27: 3 configs per class + 2


def publisher_with_discovery(port, queue_limit):
    cfg = config_mod.build({"model": {"path": "not-loaded-here"},
                            "mqtt": {"host": "127.0.0.1", "port": port, "queue_limit": queue_limit,
                                     "device_id": "pi-q", "reconnect_min": 2.0, "reconnect_max": 2.0}})
    pub = Publisher(cfg)
    configs = discovery.discovery_configs(prefix="homeassistant", topic_base=cfg.topic_base, device_id="pi-q",
                                          model_id="m-1", version="0.1", labels=LABELS)
    discovery.attach(pub, prefix="homeassistant", device_id="pi-q", configs=configs)
    return pub, configs


def lose_the_broker(pub, broker, subscriber):
    """Once the first connect has settled, a broker crash, and the publisher seeing it."""
    subscriber.wait_for(lambda: pub.connected and pub.queued == 0, what="first connect settled")
    broker.kill()
    deadline = time.monotonic() + 15
    while pub.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pub.connected


def bring_the_broker_back(pub, broker, subscriber) -> int:
    """Restart the broker and wait for the publisher's reconnect and its queue to empty; how
    many messages the subscriber had before."""
    connects, seen = subscriber.connects, len(subscriber.raw)
    broker.start()  # the subscriber (1 s retry) is back before the publisher (2 s)
    subscriber.wait_for(lambda: subscriber.connects > connects, what="subscriber back")
    subscriber.wait_for(lambda: pub.connects >= 2 and pub.queued == 0, timeout=40, what="the reconnect")
    return seen


def test_a_small_queue_limit_does_not_drop_the_discovery_configs_sent_on_connect(broker, subscriber):
    pub, configs = publisher_with_discovery(broker.port, queue_limit=1)
    assert len(configs) == 83
    pub.start()
    try:
        subscriber.wait_for(lambda: {t for t, _, _ in subscriber.raw} >= set(configs),
                            what="every discovery config")
        for i in range(20):  # frames right behind the burst, before its PUBACKs are all back
            assert pub.publish("detections", {"frame_id": i}, qos=1)
        subscriber.wait_for(lambda: len(subscriber.payloads("detections")) == 20, what="20 frames")
        assert [m["frame_id"] for m in subscriber.payloads("detections")] == list(range(20))
        assert pub.overflow == 0
    finally:
        pub.stop()


def test_a_reconnect_sends_online_the_outage_queue_and_every_config_again(broker, subscriber):
    pub, configs = publisher_with_discovery(broker.port, queue_limit=3)
    pub.start()
    try:
        lose_the_broker(pub, broker, subscriber)
        for i in range(10):  # the oldest 7 give way to the newest 3
            assert pub.publish("detections", {"frame_id": i}, qos=1)
        assert pub.overflow == 7
        seen = bring_the_broker_back(pub, broker, subscriber)

        def live_after_reconnect():
            # what the broker forwards live has retain=False; retained copies replayed to the
            # resubscribing subscriber have retain=True and do not count
            return {t for t, _, retained in subscriber.raw[seen:] if not retained}
        subscriber.wait_for(lambda: live_after_reconnect() >= set(configs), what="configs sent again")
        assert [m["frame_id"] for m in subscriber.payloads("detections")] == [7, 8, 9]
        assert pub.overflow == 7
    finally:
        pub.stop()


def test_a_burst_of_events_while_connected_is_not_dropped(broker, subscriber):
    pub, _ = publisher_with_discovery(broker.port, queue_limit=1)
    pub.start()
    try:
        subscriber.wait_for(lambda: pub.connected and pub.queued == 0, what="first connect settled")
        # a frame (or a stop) with many objects in view: an event each, then the next frame,
        # handed over faster than paho's 20 in flight are acknowledged
        for i in range(300):
            assert pub.send("events", {"track_id": i}, qos=1, retain=False), f"event {i} refused"
        assert pub.publish("detections", {"frame_id": 0}, qos=1)
        subscriber.wait_for(lambda: len(subscriber.payloads("events")) == 300
                            and len(subscriber.payloads("detections")) == 1, what="the whole burst")
        assert [m["track_id"] for m in subscriber.payloads("events")] == list(range(300))
        assert pub.overflow == 0
    finally:
        pub.stop()


def test_a_long_outage_holds_at_most_queue_bytes_snapshots_included(broker, subscriber):
    # snapshots (bytes) produced in an outage wait in the outage queue with the JSON messages,
    # in order, and the oldest give way to keep the queue within mqtt.queue_bytes: a count alone
    # let 1000 snapshots of 150 kB take 150 MB of a 1 GB Pi
    queue_bytes = 4 * 65536
    cfg = config_mod.build({"model": {"path": "not-loaded-here"},
                            "mqtt": {"host": "127.0.0.1", "port": broker.port, "queue_bytes": queue_bytes,
                                     "device_id": "pi-b", "reconnect_min": 2.0, "reconnect_max": 2.0},
                            "snapshots": {"max_bytes": 50000}})
    pub = Publisher(cfg)
    pub.start()
    try:
        lose_the_broker(pub, broker, subscriber)
        sent = []
        for i in range(30):
            picture = bytes([i]) * 40000
            assert pub.send(f"logo{i}/snapshot", picture, qos=1, retain=True)
            assert pub.publish("detections", {"frame_id": i}, qos=1)
            sent += [(f"logo{i}/snapshot", picture), ("detections", b'{"frame_id":%d}' % i)]
            assert pub.outage_bytes <= queue_bytes
        assert pub.outage_bytes > queue_bytes - 40000 - 20  # full: nothing was dropped needlessly
        kept = pub.queued
        assert pub.overflow == len(sent) - kept and 10 <= kept < 20
        seen = bring_the_broker_back(pub, broker, subscriber)
        base = cfg.topic_base + "/"
        subscriber.wait_for(lambda: sum(t.startswith(base) and not t.endswith("/available") and not retained
                                        for t, _, retained in subscriber.raw[seen:]) == kept, what="the queue")
        got = [(t[len(base):], payload) for t, payload, retained in subscriber.raw[seen:]
               if t.startswith(base) and not t.endswith("/available") and not retained]
        assert got == sent[-kept:]  # the newest, in the order they were produced
    finally:
        pub.stop()
