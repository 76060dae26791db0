/* gguf-tensors.c - list the tensors of a GGUF file with libech.
 *
 *   cc gguf-tensors.c $(pkg-config --cflags --libs libech) -o gguf-tensors
 *   ./gguf-tensors model.gguf
 */
#include <stdio.h>

#include <ech.h>

int main(int argc, char **argv)
{
    ech_gguf *g;
    ech_error err;
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE.gguf\n", argv[0]);
        return 2;
    }
    if (ech_gguf_open(argv[1], &g, &err) != ECH_OK) {
        fprintf(stderr, "%s\n", err.msg);   /* names the problem and its offset */
        return 1;
    }
    ech_str arch = {"?", 1};
    ech_gguf_get_str(g, "general.architecture", &arch);
    printf("%.*s, %zu tensors\n", (int)arch.len, arch.ptr, ech_gguf_n_tensors(g));
    for (size_t i = 0; i < ech_gguf_n_tensors(g); i++) {
        const ech_gguf_tensor *t = ech_gguf_tensor_at(g, i);   /* borrowed from g */
        printf("%-32s %-6s %llu bytes\n", t->name, ech_type_name(t->type),
               (unsigned long long)t->nbytes);
    }
    ech_gguf_close(g);   /* every pointer taken from g dies here */
    return 0;
}
