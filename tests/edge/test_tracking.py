"""The IoU tracker as pure functions: matching, confirmation, misses, ids, velocity."""
import pytest

from edge_app.detection import Detection
from edge_app.tracking import Tracker, greedy_match, iou, track_state


def det(label, x, y, size=40, conf=0.8, class_id=0):
    return Detection(class_id, label, conf, x, y, x + size, y + size)


def test_iou_known_values():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0  # touching is not overlapping
    assert iou((0, 0, 10, 10), (100, 100, 110, 110)) == 0.0


def test_greedy_match_takes_best_pairs_once():
    candidates = [(0.9, 0, 0), (0.8, 0, 1), (0.85, 1, 0), (0.1, 1, 1)]
    assert greedy_match(candidates, 0.3) == [(0, 0)]  # row 1's only candidate >= 0.3 is taken
    assert greedy_match([(0.2, 0, 0)], 0.3) == []
    assert sorted(greedy_match([(0.5, 0, 1), (0.6, 1, 0), (0.4, 0, 0)], 0.3)) == [(0, 1), (1, 0)]


def test_moving_object_keeps_its_id_through_two_missed_frames():
    tracker = Tracker(iou_threshold=0.3, max_missed=2, min_hits=2)
    ids, new, ended = set(), [], []
    for f in range(30):
        # 8 px per frame: after two missed frames the box has moved 24 px, IoU with the old
        # box ~0.25 < 0.3, so only the velocity prediction keeps the match
        detections = [] if f in (10, 11) else [det("Star", 10 + 8 * f, 50)]
        update = tracker.update(f, f * 0.1, detections)
        new += update.new
        ended += update.ended
        ids |= {t.track_id for t in update.seen}
    ended += tracker.finish()
    assert len(new) == 1 and len(ended) == 1 and len(ids) == 1
    track = ended[0]
    assert track.first_frame == 0 and track.last_frame == 29 and track.hits == 28


def test_a_one_frame_false_positive_is_never_announced():
    tracker = Tracker(min_hits=2)
    assert tracker.update(0, 0.0, [det("Star", 10, 10)]).new == []
    update = tracker.update(1, 0.1, [])
    assert update.new == [] and update.ended == [] and tracker.tracks == []


def test_object_gone_longer_than_max_missed_ends_and_comes_back_as_new():
    tracker = Tracker(max_missed=2, min_hits=1)
    first = tracker.update(0, 0.0, [det("Star", 10, 10)]).new[0]
    ended = []
    for f in (1, 2, 3):
        ended += tracker.update(f, f * 0.1, []).ended
    assert [t.track_id for t in ended] == [first.track_id]
    again = tracker.update(4, 0.4, [det("Star", 10, 10)]).new[0]
    assert again.track_id != first.track_id


def test_classes_are_tracked_apart_and_counts():
    tracker = Tracker(min_hits=1)
    tracker.update(0, 0.0, [det("Star", 10, 10), det("Moon", 12, 12, class_id=1), det("Star", 200, 10)])
    assert tracker.counts() == {"Star": 2, "Moon": 1}
    update = tracker.update(1, 0.1, [det("Moon", 10, 10, class_id=1)])
    assert [t.label for t in update.seen] == ["Moon"] and update.new == []


def test_best_score_and_state():
    tracker = Tracker(min_hits=1)
    tracker.update(0, 100.0, [det("Star", 10, 10, conf=0.5)])
    update = tracker.update(1, 100.1, [det("Star", 12, 10, conf=0.9)])
    assert update.improved and update.improved[0].best_score == pytest.approx(0.9)
    tracker.update(2, 100.2, [det("Star", 14, 10, conf=0.6)])
    t = tracker.active()[0]
    state = track_state(t, 320, 240)
    assert state["top_score"] == 0.9 and state["score"] == 0.6 and state["top_frame"] == 1
    assert state["box"]["pixels"] == [14, 10, 54, 50] and state["active"] and state["end_time"] is None
    assert state["box"]["norm"][2] == pytest.approx(54 / 320, abs=1e-5)
    assert track_state(t, 320, 240, ended=101.0)["active"] is False


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError):
        Tracker(iou_threshold=0)
    with pytest.raises(ValueError):
        Tracker(min_hits=0)


def test_a_duplicate_box_beside_an_object_does_not_steal_its_track():
    # the demo model's second guess beside a star (IoU ~0.4 with it) overlaps the star's next
    # box more than the star's own track does; confirmed tracks choose first
    tracker = Tracker(iou_threshold=0.3, max_missed=5, min_hits=3)
    star = Detection(0, "Star", 0.98, 33, 109, 98, 154)
    for f, x in enumerate((51, 45, 39)):
        tracker.update(f, f * 0.1, [Detection(0, "Star", 0.98, x, 118, x + 65, 163)])
    original = tracker.active()[0].track_id
    tracker.update(3, 0.3, [star, Detection(0, "Star", 0.53, 38, 126, 87, 167)])
    new = []
    for f in range(4, 8):
        update = tracker.update(f, f * 0.1, [Detection(0, "Star", 1.0, 30 - 6 * (f - 4), 117, 88 - 6 * (f - 4), 168)])
        new += update.new
        assert [t.track_id for t in update.seen] == [original]
    assert new == []
