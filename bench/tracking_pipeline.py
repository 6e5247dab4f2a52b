#!/usr/bin/env python3
"""Tracking end to end: `ssddetect ! ssdtrack ! ssdexport` on clips of moving shapes with known
ground truth (scripts/moving-shapes.py), scored by py-motmetrics (bench/tracker_motmetrics.py).
Where bench_tracker feeds the tracker simulated detections, this runs the detector itself, with
its misses, its box noise, its false and doubled detections.

  GST_PLUGIN_PATH=build/gst-plugin .venv/bin/python bench/tracking_pipeline.py \\
      [--clips 3] [--frames 300] [--objects 8] [--size 0.1,0.2] [--speed 1,4] \\
      [--intervals 1,3] [--detect "threshold=0.3"] [--track "max-lost=10"] [--out DIR] \\
      [--min-idf1 X] [--min-mota X]

For each interval, summed over the clips (seeds 1 .. clips): objects; ids, those the tracker
gave to detections motmetrics matched to an object at least once (as bench_tracker counts them)
and the count error of counting objects by them; of those, the ids with at most 5 analysed
detections (not counting the frames an `interval` carried); false ids, those of detections
matched to no object (false detections, and second detections of an object another id follows:
per-class NMS keeps two labels' boxes at one place); id switches and fragmentations, IDF1, MOTA,
and the detections' recall and precision (matched at IoU >= 0.5 as motmetrics matches them).
--min-idf1 and --min-mota exit 1 when a row falls below them (the test `tracking-pipeline`).
"""
import argparse
import collections
import json
import os
import shlex
import subprocess
import sys
import tempfile
from fractions import Fraction

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tracker_motmetrics  # noqa: E402  (beside this file; before motmetrics: its numpy 2 shim)
import motmetrics as mm  # noqa: E402


def render(out, seed, args):
    subprocess.run([sys.executable, os.path.join(HERE, '..', 'scripts', 'moving-shapes.py'), out,
                    '--objects', str(args.objects), '--frames', str(args.frames), '--speed', args.speed,
                    '--size', args.size, '--seed', str(seed)], check=True, stdout=subprocess.DEVNULL)


def framerate(clip):
    with open(os.path.join(clip, 'truth.json')) as f:
        return json.load(f)['framerate']


def run_pipeline(clip, fps, interval, jsonl, args):
    rate = Fraction(fps).limit_denominator(1001)
    launch = ('multifilesrc location=%s index=0 caps=image/png,framerate=%d/%d ! pngdec ! videoconvert ! '
              'ssddetect interval=%d %s ! ssdtrack %s ! ssdexport location=%s ! fakesink'
              % (os.path.join(clip, 'frames', '%05d.png'), rate.numerator, rate.denominator,
                 interval, args.detect, args.track, jsonl))
    done = subprocess.run(['gst-launch-1.0', '-q'] + shlex.split(launch), capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit('tracking_pipeline: gst-launch-1.0 %s failed (%d): %s' % (launch, done.returncode, done.stderr))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--clips', type=int, default=3)
    parser.add_argument('--frames', type=int, default=300)
    parser.add_argument('--objects', type=int, default=8)
    parser.add_argument('--size', default='0.1,0.2')
    parser.add_argument('--speed', default='1,4')
    parser.add_argument('--intervals', default='1,3')
    parser.add_argument('--detect', default='', help="ssddetect's properties, e.g. 'threshold=0.4'")
    parser.add_argument('--track', default='', help="ssdtrack's properties, e.g. 'max-lost=30'")
    parser.add_argument('--out', help='keep the clips and JSON Lines there (default: a temporary folder)')
    parser.add_argument('--min-idf1', type=float)
    parser.add_argument('--min-mota', type=float)
    args = parser.parse_args()
    intervals = [int(v) for v in args.intervals.split(',')]
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        return measure(args, intervals, args.out)
    with tempfile.TemporaryDirectory(prefix='tracking-pipeline-') as work:
        return measure(args, intervals, work)


def measure(args, intervals, work):
    clips = []
    for seed in range(1, args.clips + 1):
        clip = os.path.join(work, 'clip%d' % seed)
        render(clip, seed, args)
        clips.append((clip, framerate(clip)))
    print('%d clips of %d frames, %d objects of %s x the width at %s px a frame (scripts/moving-shapes.py); '
          'ssddetect %s ! ssdtrack %s' % (args.clips, args.frames, args.objects, args.size, args.speed,
                                         args.detect or '(defaults)', args.track or '(defaults)'))
    print('%8s %7s %5s %9s %9s %9s %8s %6s %6s %6s %6s %9s'
          % ('interval', 'objects', 'ids', 'count err', 'ids <= 5', 'false ids', 'switches', 'frags', 'IDF1', 'MOTA',
             'recall', 'precision'))
    mh = mm.metrics.create()
    metrics = ['num_unique_objects', 'num_objects', 'num_predictions', 'num_misses', 'num_false_positives',
               'num_switches', 'num_fragmentations', 'idtp']
    bad = 0
    for interval in intervals:
        total = dict.fromkeys(metrics, 0)
        ids = short = false = 0   # on objects; on objects, at most 5 analysed detections; on none
        for clip, fps in clips:
            jsonl = os.path.join(work, '%s-i%d.jsonl' % (os.path.basename(clip), interval))
            run_pipeline(clip, fps, interval, jsonl, args)
            # Each id's analysed detections (those an `interval` carried repeat them).
            analysed = collections.Counter()
            result = tracker_motmetrics.read_jsonl(jsonl, fps, analysed)
            acc = tracker_motmetrics.accumulate_frames(
                tracker_motmetrics.read(os.path.join(clip, 'gt', 'gt.txt'), ground_truth=True), result)
            row = mh.compute(acc, metrics=metrics).iloc[0]
            for m in metrics:
                total[m] += int(row[m])
            events = acc.mot_events
            matched = set(events[events['Type'].isin(['MATCH', 'SWITCH', 'TRANSFER', 'ASCEND', 'MIGRATE'])]['HId']
                          .dropna())
            given = {i for ids, _ in result.values() for i in ids}
            on_objects = {i for i in given if float(i) in matched}
            ids += len(on_objects)
            short += sum(1 for i in on_objects if analysed[i] <= 5)
            false += len(given - on_objects)
        objects, gt, pred = total['num_unique_objects'], total['num_objects'], total['num_predictions']
        idf1, mota = (v or 0 for v in tracker_motmetrics.totals(total))
        recall = (gt - total['num_misses']) / max(1, gt)
        precision = (pred - total['num_false_positives']) / max(1, pred)
        print('%8d %7d %5d %+8.1f%% %9d %9d %8d %6d %6.3f %6.3f %6.3f %9.3f'
              % (interval, objects, ids, 100 * (ids - objects) / max(1, objects), short, false,
                 total['num_switches'], total['num_fragmentations'], idf1, mota, recall, precision))
        if args.min_idf1 is not None and idf1 < args.min_idf1:
            print('tracking_pipeline: interval %d: IDF1 %.3f below %.3f' % (interval, idf1, args.min_idf1))
            bad += 1
        if args.min_mota is not None and mota < args.min_mota:
            print('tracking_pipeline: interval %d: MOTA %.3f below %.3f' % (interval, mota, args.min_mota))
            bad += 1
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
