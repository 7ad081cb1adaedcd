#include "explain/scoring.h"

#include <math.h>

#include "base/error.h"

vl_box vl_box_of_object(const vl_shapes_object *o) {
  vl_box b = {o->x0, o->y0, o->x0 + o->s, o->y0 + o->s};
  return b;
}

vl_box vl_box_grow(vl_box b, double px) {
  vl_box g = {b.x0 - px, b.y0 - px, b.x1 + px, b.y1 + px};
  return g;
}

int vl_box_contains(vl_box b, double x, double y) {
  return x >= b.x0 && x <= b.x1 && y >= b.y0 && y <= b.y1;
}

int vl_pointing_hit(const vl_heatmap *m, vl_box box) {
  double x, y;
  vl_heatmap_peak(m, &x, &y);
  return vl_box_contains(box, x, y);
}

static double overlap(double a0, double a1, double b0, double b1) {
  double lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;
  return hi > lo ? hi - lo : 0;
}

double vl_mass_in_box(const vl_heatmap *m, vl_box box) {
  int n = m->gw * m->gh;
  double lo = m->cells[0];
  for (int i = 1; i < n; i++)
    lo = m->cells[i] < lo ? m->cells[i] : lo;
  double tot = 0, in = 0, cover = 0;
  double cw = (double)m->image_w / m->gw, ch = (double)m->image_h / m->gh;
  for (int r = 0; r < m->gh; r++)
    for (int c = 0; c < m->gw; c++) {
      double frac = overlap(c * cw, (c + 1) * cw, box.x0, box.x1) *
                    overlap(r * ch, (r + 1) * ch, box.y0, box.y1) / (cw * ch);
      double v = m->cells[r * m->gw + c] - lo;
      tot += v;
      in += v * frac;
      cover += frac;
    }
  return tot > 0 ? in / tot : cover / n;
}

int vl_center_pointing_hit(int image_w, int image_h, vl_box box) {
  return vl_box_contains(box, image_w / 2.0, image_h / 2.0);
}

vl_heatmap *vl_center_baseline_map(int gw, int gh, int image_w, int image_h) {
  vl_heatmap *m = vl_heatmap_new("center", NULL, gw, gh, image_w, image_h);
  if (!m) return NULL;
  double s = (image_w < image_h ? image_w : image_h) / 4.0;
  for (int r = 0; r < gh; r++)
    for (int c = 0; c < gw; c++) {
      double dx = (c + 0.5) * image_w / gw - image_w / 2.0;
      double dy = (r + 0.5) * image_h / gh - image_h / 2.0;
      m->cells[r * gw + c] = (float)exp(-(dx * dx + dy * dy) / (2 * s * s));
    }
  return m;
}
