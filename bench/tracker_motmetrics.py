#!/usr/bin/env python3
"""Scores tracking with py-motmetrics, the reference implementation of the CLEAR MOT and
identity measures (github.com/cheind/py-motmetrics), as the MOTChallenge devkit scores them:
ground truth and tracker boxes matched per frame by IoU >= 0.5.

  .venv/bin/python bench/tracker_motmetrics.py DIR [--check]
  .venv/bin/python bench/tracker_motmetrics.py --gt GT.txt --result RESULT [--framerate F]

DIR is what `bench_tracker --mot-dir DIR` writes: one folder per sequence, <name>/gt/gt.txt and
<name>/<name>.txt, and summary.json with bench_tracker's own counts for each sequence, which
knows the object each detection came from and so needs no matching. Prints motmetrics' figures
summed over all sequences. --check compares them, sequence by sequence, with bench_tracker's:
misses, false positives, id switches, IDTP, IDF1 and MOTA must agree exactly (they differ only
where matching by IoU pairs a box with another object than its own: jitter beyond IoU 0.5, or
objects on top of each other). Exits 1 on a difference, naming the sequence.

--gt and --result score one sequence: a MOTChallenge ground truth (scripts/moving-shapes.py
writes one; so do annotation tools for MOT17 and the like) against a MOTChallenge result or the
JSON Lines of `ssdtrack ! ssdexport` (.jsonl: each detection's `object_id` and pixel box; a line's
frame is its `stream_time` at --framerate when given, as `ssd-clip score` takes it, else its
`frame`; frames numbered from 1 as MOTChallenge's). Prints the figures as one JSON object.
"""
import argparse
import json
import os
import sys

import motmetrics as mm

METRICS = ['num_objects', 'num_predictions', 'num_misses', 'num_false_positives', 'num_switches',
           'idtp', 'idf1', 'mota', 'num_unique_objects']
# bench_tracker's summary.json names for motmetrics' counts (ints) and ratios (floats).
COUNTS = {'num_objects': 'true_boxes', 'num_predictions': 'detections', 'num_misses': 'missed',
          'num_false_positives': 'false_detections', 'num_switches': 'switches', 'idtp': 'idtp'}
RATIOS = {'idf1': 'idf1', 'mota': 'mota'}


def read(path):
    """A MOTChallenge file: {frame: ([id, ...], [[left, top, width, height], ...])}."""
    frames = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            values = line.strip().split(',')
            if len(values) < 6:
                raise SystemExit('%s:%d: not a MOTChallenge line (frame,id,left,top,width,height,...)'
                                 % (path, number))
            ids, boxes = frames.setdefault(int(float(values[0])), ([], []))
            ids.append(int(float(values[1])))
            boxes.append([float(v) for v in values[2:6]])
    return frames


def read_jsonl(path, framerate):
    """ssdexport's JSON Lines as read() returns a MOTChallenge file."""
    frames = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            if framerate and record.get('stream_time') is not None:
                frame = int(round(record['stream_time'] * framerate / 1e9)) + 1
            else:
                frame = int(record['frame']) + 1
            if frame in frames:
                raise SystemExit('%s:%d: a second line for frame %d (a --framerate other than the stream\'s?)'
                                 % (path, number, frame))
            ids, boxes = frames[frame] = ([], [])
            for d in record['detections']:
                if d.get('object_id') is None:
                    raise SystemExit('%s:%d: a detection without an object_id (put ssdtrack before ssdexport)'
                                     % (path, number))
                box = d['box']
                ids.append(int(d['object_id']))
                boxes.append([float(box['x']), float(box['y']), float(box['w']), float(box['h'])])
    return frames


def accumulate(gt_path, result_path, framerate=None):
    """motmetrics' events for one sequence, as mm.utils.compare_to_groundtruth(gt, result, 'iou',
    distth=0.5) makes them (a pair with IoU below 0.5 may not match), frames without boxes too."""
    gt = read(gt_path)
    result = read_jsonl(result_path, framerate) if result_path.endswith('.jsonl') else read(result_path)
    acc = mm.MOTAccumulator(auto_id=False)
    for frame in sorted(set(gt) | set(result)):
        gt_ids, gt_boxes = gt.get(frame, ([], []))
        ids, boxes = result.get(frame, ([], []))
        acc.update(gt_ids, ids, mm.distances.iou_matrix(gt_boxes, boxes, max_iou=0.5), frameid=frame)
    return acc


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('dir', nargs='?', help="bench_tracker --mot-dir's folder")
    parser.add_argument('--check', action='store_true',
                        help="compare with bench_tracker's counts in DIR/summary.json")
    parser.add_argument('--gt', help='one sequence: its MOTChallenge ground truth')
    parser.add_argument('--result', help="one sequence: a MOTChallenge result, or ssdexport's .jsonl")
    parser.add_argument('--framerate', type=float, help="the .jsonl's frame rate (frames by stream_time)")
    args = parser.parse_args()
    if (args.gt is None) != (args.result is None) or (args.gt is None) == (args.dir is None):
        parser.error('give DIR, or --gt and --result')
    if args.gt:
        table = mm.metrics.create().compute(accumulate(args.gt, args.result, args.framerate),
                                            metrics=METRICS + ['num_frames', 'num_fragmentations'])
        row = table.iloc[0]
        print(json.dumps({m: (float(row[m]) if m in RATIOS else int(row[m])) for m in table.columns}))
        return 0
    with open(os.path.join(args.dir, 'summary.json')) as f:
        summary = json.load(f)
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
    idf1 = 2 * total['idtp'] / max(1, total['num_objects'] + total['num_predictions'])
    mota = 1 - (total['num_misses'] + total['num_false_positives'] + total['num_switches']) / max(1, total['num_objects'])
    print('motmetrics %s over %d sequences: objects %d, true boxes %d, tracker boxes %d, misses %d, '
          'false positives %d, id switches %d, IDTP %d, IDF1 %.4f, MOTA %.4f'
          % (mm.__version__, len(names), total['num_unique_objects'], total['num_objects'],
             total['num_predictions'], total['num_misses'], total['num_false_positives'],
             total['num_switches'], total['idtp'], idf1, mota))
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
            if abs(float(row[theirs]) - float(seq[ours])) > 1e-9:
                print('%s: %s %.9f (motmetrics) != %s %.9f (bench_tracker)'
                      % (seq['sequence'], theirs, row[theirs], ours, seq[ours]))
                bad += 1
    print('check: %d of %d sequences compared, %d differences' % (len(summary), len(summary), bad))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
