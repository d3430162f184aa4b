#!/usr/bin/env bash
# Renders the app icons from the shapes of icon.svg (this ImageMagick has no SVG reader, so the same
# geometry is drawn at 1024 px with its own primitives, then scaled down for smooth edges).
set -euo pipefail
cd "$(dirname "$0")"
master=$(mktemp --suffix=.png)
trap 'rm -f "$master"' EXIT
convert -size 1024x1024 xc:none \
  -fill '#1f4e5f' -draw "roundrectangle 32,32 991,991 208,208" \
  -fill '#e9f1ee' -draw "circle 512,512 512,168" \
  -fill none -stroke '#2f7d6d' -strokewidth 28 -draw "circle 512,512 512,220" \
  -stroke none -fill '#2f7d6d' -draw "circle 512,512 512,264" \
  -fill none -stroke '#ffffff' -strokewidth 68 \
  -draw "stroke-linecap round stroke-linejoin round polyline 392,524 480,612 644,428" \
  "$master"
for size in 32 128 256 512; do
  convert "$master" -resize "${size}x${size}" -depth 8 "PNG32:${size}x${size}.png"
done
mv 256x256.png 128x128@2x.png
mv 512x512.png icon.png
convert "$master" -depth 8 -define icon:auto-resize=256,128,64,48,32,16 icon.ico
