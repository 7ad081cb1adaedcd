/* describe IMAGE [MODEL]: captions IMAGE with a BLIP captioner (a folder, or
 * the name of an embedded model; default "shapes-blip") and prints, for each
 * word, where its Grad-CAM map peaks. Uses only the public API (vlens.h).
 * Build: make examples (-> build/<variant>/examples/describe). */
#include <stdio.h>

#include "vlens.h"

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: %s IMAGE [MODEL]\n", argv[0]);
    return 2;
  }
  vlens_image *img = vlens_image_load(argv[1], 0);
  vlens_model *m = img ? vlens_model_load(argc > 2 ? argv[2] : "shapes-blip") : NULL;
  vlens_describe_opts o;
  vlens_describe_opts_init(&o); /* gradcam, every word */
  vlens_description *d = m ? vlens_describe(m, img, &o) : NULL;
  if (!d) {
    fprintf(stderr, "describe: %s\n", vlens_last_error());
    vlens_model_free(m);
    vlens_image_free(img);
    return 1;
  }
  printf("%s\n", vlens_description_text(d));
  for (int w = 0; w < vlens_description_n_words(d); w++) {
    const vlens_heatmap *h = vlens_description_heatmap(d, w, "gradcam");
    vlens_heatmap_stats st;
    if (!h || vlens_heatmap_get_stats(h, &st)) continue; /* e.g. a prompt word */
    printf("  %-12s gradcam peak (%.0f, %.0f) %s\n", vlens_description_word(d, w), st.peak_x,
           st.peak_y, st.region);
  }
  vlens_description_free(d);
  vlens_model_free(m);
  vlens_image_free(img);
  return 0;
}
