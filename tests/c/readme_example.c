/* README example: share a fresh session, print its URL, sync two writes, flush, shut down. */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "opencode_share.h"

/* A fresh session id as opencode makes them: "ses_", the time inverted, 14 random characters. */
static int new_session_id(char id[31]) {
    static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned char bytes[14] = {0};
    FILE *urandom = fopen("/dev/urandom", "rb");
    size_t got = urandom != NULL ? fread(bytes, 1, sizeof bytes, urandom) : 0;
    if (urandom != NULL)
        fclose(urandom);
    unsigned long long ms = (unsigned long long)time(NULL) * 1000;
    sprintf(id, "ses_%012llx", ~(ms * 4096 + 1) & 0xffffffffffffULL);
    for (int i = 0; i < 14; i++)
        id[16 + i] = base62[bytes[i] % 62];
    id[30] = '\0';
    return got == sizeof bytes ? 0 : -1;
}

int main(int argc, char **argv) {
    char config[256], session[31], key[128], *share = NULL;
    snprintf(config, sizeof config, "{\"url\":\"%s\"}", argc > 1 ? argv[1] : "http://127.0.0.1:8787");
    if (new_session_id(session) != 0) {
        fprintf(stderr, "cannot read /dev/urandom\n");
        return 1;
    }
    if (share_init(config) != SHARE_OK) {
        fprintf(stderr, "init: %s\n", share_last_error());
        return 1;
    }
    if (share_create(session, &share) != SHARE_OK) {
        fprintf(stderr, "create: %s\n", share_last_error());
        share_shutdown(0);
        return 1;
    }
    /* share is {"url":"..","secret":".."}: print the url (keep the secret to remove the share) */
    const char *url = strstr(share, "\"url\":\"");
    if (url != NULL) {
        url += strlen("\"url\":\"");
        printf("session: %s\nshare URL: %.*s\n", session, (int)strcspn(url, "\""), url);
    }
    share_string_free(share);
    snprintf(key, sizeof key, "session/info/%s", session);
    share_sync(key, "{\"title\":\"hello\"}");
    snprintf(key, sizeof key, "session/part/%s/msg_1/prt_1", session);
    share_sync(key, "{\"type\":\"text\",\"text\":\"hi\"}");
    if (share_flush(5000) != SHARE_OK)
        fprintf(stderr, "flush: %s\n", share_last_error());
    return share_shutdown(5000) == SHARE_OK ? 0 : 1;
}
