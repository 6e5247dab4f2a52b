#!/usr/bin/env python3
"""Scores tracking with py-motmetrics, the reference implementation of the CLEAR MOT and
identity measures (github.com/cheind/py-motmetrics), as its compare_to_groundtruth does: ground
truth and tracker boxes matched per frame at IoU >= 0.5.

  .venv/bin/python bench/tracker_motmetrics.py DIR [--check]
  .venv/bin/python bench/tracker_motmetrics.py --gt GT.txt --result RESULT [--framerate F]

DIR is what `bench_tracker --mot-dir DIR` writes: one folder per sequence, <name>/gt/gt.txt and
<name>/<name>.txt, and summary.json with bench_tracker's own counts for each sequence, which
knows the object each detection came from and so needs no matching. Prints motmetrics' figures
summed over all sequences. --check compares them, sequence by sequence, with bench_tracker's:
misses, false positives, id switches, IDTP, IDF1 and MOTA must agree exactly, which they do
where matching by IoU finds each box's own object, and not where two objects overlap enough for
a box to match the other (often in crowds; 8 of the 1,200 sequences of the sparse scenes and
handover at 100 sequences and intervals 1, 3 and 4). Exits 1 on a difference, naming the
sequence.

--gt and --result score one sequence: a MOTChallenge ground truth (scripts/moving-shapes.py
writes one; so do annotation tools) against a MOTChallenge result or the JSON Lines of
`ssdtrack ! ssdexport` (.jsonl: each detection's `object_id` and pixel box; one without an id,
on ssdtrack's min-hits probation, is not reported). Frames are numbered
from 1, as MOTChallenge's; a .jsonl line's frame is its `stream_time` at --framerate, the ground
truth's frame rate, when given (as `ssd-clip score` takes it: right also where frames were
dropped or repeated on the way), else its `frame` + 1. Ground-truth rows whose 7th column (the
MOT17 "consider" flag) is 0 are left out, as motmetrics' own loader leaves them out at
min_confidence 1; detections on such objects still count as false positives (the MOTChallenge
devkit's removal of detections on distractor classes is not done). Prints the figures as one
JSON object (null for a ratio of nothing, as MOTA without ground truth).
"""
import argparse
import json
import math
import os
import sys

import numpy as np

# motmetrics 1.4.0's IoU distances call np.asfarray, which numpy 2 removed (Debian 13's numpy
# 2.2): the same conversion under its old name, so that its own code computes them there too.
if not hasattr(np, 'asfarray'):
    np.asfarray = lambda a, dtype=float: np.asarray(a, dtype=dtype)

import motmetrics as mm  # noqa: E402

METRICS = ['num_objects', 'num_predictions', 'num_misses', 'num_false_positives', 'num_switches',
           'idtp', 'idf1', 'mota', 'num_unique_objects']
# bench_tracker's summary.json names for motmetrics' counts (ints) and ratios (floats).
COUNTS = {'num_objects': 'true_boxes', 'num_predictions': 'detections', 'num_misses': 'missed',
          'num_false_positives': 'false_detections', 'num_switches': 'switches', 'idtp': 'idtp'}
RATIOS = {'idf1': 'idf1', 'mota': 'mota'}


def fail(message):
    sys.exit('tracker_motmetrics: ' + message)


def lines(path):
    """(line number, text) of each line of `path` that is not blank."""
    try:
        with open(path) as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    yield number, line.strip()
    except OSError as e:
        fail('cannot read %s: %s' % (path, e.strerror))


def read(path, ground_truth=False):
    """A MOTChallenge file: {frame: ([id, ...], [[left, top, width, height], ...])}."""
    frames = {}
    for number, line in lines(path):
        values = line.split(',')
        try:
            if len(values) < 6:
                raise ValueError
            frame, track = int(float(values[0])), int(float(values[1]))
            box = [float(v) for v in values[2:6]]
            consider = float(values[6]) if ground_truth and len(values) > 6 else 1
        except ValueError:
            fail('%s:%d: not a MOTChallenge line (frame,id,left,top,width,height,...): %s'
                 % (path, number, line[:80]))
        if consider == 0:
            continue
        ids, boxes = frames.setdefault(frame, ([], []))
        ids.append(track)
        boxes.append(box)
    return frames


def read_jsonl(path, framerate, analysed=None):
    """ssdexport's JSON Lines as read() returns a MOTChallenge file. analysed, a Counter when
    given, counts each id's analysed detections (not those an ssddetect `interval` carried, which
    repeat an analysed frame's)."""
    frames = {}
    untracked = tracked = 0
    for number, line in lines(path):
        try:
            record = json.loads(line)
            if framerate and record.get('stream_time') is not None:
                frame = int(round(record['stream_time'] * framerate / 1e9)) + 1
            else:
                frame = int(record['frame']) + 1
            detections = record['detections']
        except (ValueError, KeyError, TypeError) as e:
            fail('%s:%d: not a line of ssdexport (%s)' % (path, number, e))
        if frame in frames:
            fail("%s:%d: a second line for frame %d (is --framerate the ground truth's?)" % (path, number, frame))
        ids, boxes = frames[frame] = ([], [])
        for d in detections:
            if d.get('object_id') is None:   # (a track on probation, ssdtrack's min-hits: not reported)
                untracked += 1
                continue
            tracked += 1
            if analysed is not None and not d.get('carried'):
                analysed[int(d['object_id'])] += 1
            box = d['box']
            ids.append(int(d['object_id']))
            boxes.append([float(box['x']), float(box['y']), float(box['w']), float(box['h'])])
    if untracked and not tracked:
        fail('%s: no detection has an object_id (put ssdtrack before ssdexport)' % path)
    return frames


def read_result(path, framerate):
    return read_jsonl(path, framerate) if path.lower().endswith('.jsonl') else read(path)


def accumulate(gt_path, result_path, framerate=None, warn_frames=False):
    """motmetrics' events for one sequence, as mm.utils.compare_to_groundtruth(gt, result, 'iou',
    distth=0.5) makes them (a pair with IoU below 0.5 may not match), frames without boxes too.
    warn_frames: say so where the result ends far from where the ground truth does (a wrong
    --framerate; the objects of a clip are most often in it to its end)."""
    gt, result = read(gt_path, ground_truth=True), read_result(result_path, framerate)
    if warn_frames and gt and result and not 0.9 * max(gt) - 1 <= max(result) <= 1.1 * max(gt) + 1:
        # (Frames counted at another rate than the ground truth's score as nothing, silently.)
        print("tracker_motmetrics: warning: %s ends at frame %d, the ground truth at %d: is --framerate "
              "the ground truth's?" % (result_path, max(result), max(gt)), file=sys.stderr)
    return accumulate_frames(gt, result)


def accumulate_frames(gt, result):
    """accumulate() of a ground truth and a result read() or read_jsonl() read."""
    acc = mm.MOTAccumulator(auto_id=False)
    for frame in sorted(set(gt) | set(result)):
        gt_ids, gt_boxes = gt.get(frame, ([], []))
        ids, boxes = result.get(frame, ([], []))
        acc.update(gt_ids, ids, mm.distances.iou_matrix(gt_boxes, boxes, max_iou=0.5), frameid=frame)
    return acc


def totals(counts):
    """IDF1 and MOTA of counts summed over sequences (motmetrics' names); None for a ratio of
    nothing."""
    boxes = counts['num_objects'] + counts['num_predictions']
    idf1 = 2 * counts['idtp'] / boxes if boxes else None
    mota = (1 - (counts['num_misses'] + counts['num_false_positives'] + counts['num_switches'])
            / counts['num_objects']) if counts['num_objects'] else None
    return idf1, mota


def finite(value):
    return value if not isinstance(value, float) or math.isfinite(value) else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('dir', nargs='?', help="bench_tracker --mot-dir's folder")
    parser.add_argument('--check', action='store_true',
                        help="compare with bench_tracker's counts in DIR/summary.json")
    parser.add_argument('--gt', help='one sequence: its MOTChallenge ground truth')
    parser.add_argument('--result', help="one sequence: a MOTChallenge result, or ssdexport's .jsonl")
    parser.add_argument('--framerate', type=float,
                        help="the ground truth's frame rate: a .jsonl line's frame is its stream_time at it")
    args = parser.parse_args()
    if bool(args.gt) != bool(args.result) or bool(args.gt) == bool(args.dir):
        parser.error('give DIR, or --gt and --result')
    if args.framerate is not None and not args.framerate > 0:
        parser.error('--framerate must be above 0')
    if args.gt:
        table = mm.metrics.create().compute(accumulate(args.gt, args.result, args.framerate, warn_frames=True),
                                            metrics=METRICS + ['num_frames', 'num_fragmentations'])
        row = table.iloc[0]
        print(json.dumps({m: finite(float(row[m]) if m in RATIOS else int(row[m])) for m in table.columns}))
        return 0
    try:
        with open(os.path.join(args.dir, 'summary.json')) as f:
            summary = json.load(f)
    except (OSError, ValueError) as e:
        fail('%s: no summary.json of bench_tracker --mot-dir (%s)' % (args.dir, e))
    mh = mm.metrics.create()
    accs, names = [], []
    for seq in summary:
        name = seq['sequence']
        base = os.path.join(args.dir, name)
        accs.append(accumulate(os.path.join(base, 'gt', 'gt.txt'), os.path.join(base, name + '.txt')))
        names.append(name)
    table = mh.compute_many(accs, names=names, metrics=METRICS)
    # The sums over all sequences (motmetrics' own generate_overall merges the event tables with
    # DataFrame.append, which pandas 2 removed).
    total = {m: int(table[m].sum()) for m in METRICS if m not in RATIOS}
    idf1, mota = totals(total)
    print('motmetrics %s over %d sequences: objects %d, true boxes %d, tracker boxes %d, misses %d, '
          'false positives %d, id switches %d, IDTP %d, IDF1 %s, MOTA %s'
          % (mm.__version__, len(names), total['num_unique_objects'], total['num_objects'],
             total['num_predictions'], total['num_misses'], total['num_false_positives'],
             total['num_switches'], total['idtp'], '-' if idf1 is None else '%.4f' % idf1,
             '-' if mota is None else '%.4f' % mota))
    if not args.check:
        return 0
    bad = 0
    for seq in summary:
        row = table.loc[seq['sequence']]
        for theirs, ours in COUNTS.items():
            if int(row[theirs]) != int(seq[ours]):
                print('%s: %s %d (motmetrics) != %s %d (bench_tracker)'
                      % (seq['sequence'], theirs, row[theirs], ours, seq[ours]))
                bad += 1
        for theirs, ours in RATIOS.items():
            a, b = float(row[theirs]), float(seq[ours])
            if not (abs(a - b) <= 1e-9 or (not math.isfinite(a) and b == 0)):   # (0 for a ratio of nothing)
                print('%s: %s %.9f (motmetrics) != %s %.9f (bench_tracker)'
                      % (seq['sequence'], theirs, a, ours, b))
                bad += 1
    print('check: %d of %d sequences compared, %d differences' % (len(summary), len(summary), bad))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
