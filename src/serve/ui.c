/* The web UI page, src/serve/ui.html, embedded at build time by the
 * assembler (.incbin; the path is relative to the repository root, where
 * make runs; the Makefile lists ui.html as a prerequisite of ui.o). A NUL
 * follows the bytes so the page is also a C string. */
#include "serve/serve_impl.h"

__asm__(".section .rodata\n"
        ".global vl_ui_html\n"
        ".type vl_ui_html, @object\n"
        ".balign 16\n"
        "vl_ui_html:\n"
        ".incbin \"src/serve/ui.html\"\n"
        "vl_ui_html_end:\n"
        ".byte 0\n"
        ".global vl_ui_html_len\n"
        ".type vl_ui_html_len, @object\n"
        ".balign 4\n"
        "vl_ui_html_len:\n"
        ".int vl_ui_html_end - vl_ui_html\n"
        ".previous\n");
