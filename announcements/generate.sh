#!/bin/sh
# Makes the platform's announcements from their French text (NAME.txt) with espeak-ng and sox:
# 8 kHz mono 16-bit PCM WAV, the telephone's own rate, so the media anchor plays them unchanged.
# Run it after editing a text; the WAV files are committed so that building needs neither tool.
set -eu
cd "$(dirname "$0")"
for text in *.txt; do
    name="${text%.txt}"
    espeak-ng -v fr -s 150 -p 45 -w "$name.raw.wav" -f "$text"
    sox "$name.raw.wav" -r 8000 -c 1 -b 16 -e signed-integer "$name.wav" norm -3
    rm -f "$name.raw.wav"
    echo "$name.wav: $(soxi -D "$name.wav") s"
done
