#!/bin/sh
# make install puts binaries, library, headers, pkg-config file and man
# pages in place, and a program builds against the installed library.
. "$ECH_SRC/tests/test-lib.sh"

command -v pkg-config >/dev/null || skip_all "pkg-config absent"
root="$TEST_DIR/root"
prefix=$(sed -n 's/^prefix=//p' "$ECH_BUILD/libech.pc")

test_expect_success 'make install into a staging root' '
	make -s -C "$ECH_BUILD" install DESTDIR="$root" >log 2>&1 || { cat log; false; }
'
test_expect_success 'installed: tools, library, header, pkg-config, man pages' '
	test -x "$root$prefix/bin/ech-inspect" &&
	ls "$root$prefix"/lib/libech.so* >/dev/null && test -f "$root$prefix/lib/libech.a" &&
	test -f "$root$prefix/include/echostra/ech.h" &&
	test -f "$root$prefix/include/echostra/gguf/gguf.h" &&
	test -f "$root$prefix/lib/pkgconfig/libech.pc" &&
	test -f "$root$prefix/share/man/man1/ech-inspect.1" &&
	test -f "$root$prefix/share/man/man3/libech.3"
'
test_expect_success 'the example program builds against the installed library and runs' '
	export PKG_CONFIG_PATH="$root$prefix/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$root" &&
	${CC:-cc} $ECH_SAN_CFLAGS "$ECH_SRC/share/examples/gguf-tensors.c" $(pkg-config --cflags --libs libech) -o ex &&
	mkgguf m.gguf &&
	LD_LIBRARY_PATH="$root$prefix/lib" ./ex m.gguf >out &&
	grep -q "^llama, 33 tensors" out && grep -q "blk.0.Q4_K.weight *Q4_K *864 bytes" out
'
test_expect_success 'the client example builds against the installed headers' '
	export PKG_CONFIG_PATH="$root$prefix/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$root" &&
	test -f "$root$prefix/include/echostra/net/client.h" && test -f "$root$prefix/share/man/man3/ech_client.3" &&
	${CC:-cc} $ECH_SAN_CFLAGS "$ECH_SRC/share/examples/chat-client.c" $(pkg-config --cflags --libs libech) -o chat-ex &&
	LD_LIBRARY_PATH="$root$prefix/lib" ./chat-ex 2>err; test $? -eq 2 && grep -q "^usage:" err
'
test_expect_success 'the installed ech-inspect runs' '
	LD_LIBRARY_PATH="$root$prefix/lib" "$root$prefix/bin/ech-inspect" --version | grep -q echostra
'
test_done
