/* README example: share a fresh session, print its URL, sync two writes, flush, shut down. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "opencode_share.h"

int main(int argc, char **argv) {
    char config[256], session[31], key[128], *share = NULL;
    const char *base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    /* a fresh session id as opencode makes them: "ses_", the time inverted, 14 random characters */
    unsigned long long ms = (unsigned long long)time(NULL) * 1000;
    srand((unsigned)(ms ^ ((unsigned long long)getpid() << 16)));
    sprintf(session, "ses_%012llx", ~(ms * 4096 + 1) & 0xffffffffffffULL);
    for (int i = 16; i < 30; i++)
        session[i] = base62[rand() % 62];
    session[30] = '\0';
    snprintf(config, sizeof config, "{\"url\":\"%s\"}", argc > 1 ? argv[1] : "http://127.0.0.1:8787");
    if (share_init(config) != SHARE_OK || share_create(session, &share) != SHARE_OK) {
        fprintf(stderr, "%s\n", share_last_error());
        share_shutdown(0);
        return 1;
    }
    /* share is {"url":"..","secret":".."}: print the url (keep the secret to remove the share) */
    const char *url = strstr(share, "\"url\":\"");
    if (url != NULL)
        printf("session: %s\nshare URL: %.*s\n", session, (int)strcspn(url + 7, "\""), url + 7);
    share_string_free(share);
    snprintf(key, sizeof key, "session/info/%s", session);
    share_sync(key, "{\"title\":\"hello\"}");
    snprintf(key, sizeof key, "session/part/%s/msg_1/prt_1", session);
    share_sync(key, "{\"type\":\"text\",\"text\":\"hi\"}");
    if (share_flush(5000) != SHARE_OK)
        fprintf(stderr, "flush: %s\n", share_last_error());
    return share_shutdown(5000) == SHARE_OK ? 0 : 1;
}
