/*
 * static-probe.c - a statically linked program for test-attach: attach=auto
 * must not offer the hook (LD_PRELOAD) to it.  It does nothing.
 */
int main(void)
{
    return 0;
}
