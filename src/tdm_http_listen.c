/* tdm_http_listen.c -- the HTTP server's listening socket. */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "tdm_http_int.h"

int tdm_httpi_listen(const char *spec, char *bound, size_t boundsz,
                     tdm_error *err) {
  char host[256], port[16];
  const char *colon;
  struct addrinfo hints, *ai = NULL;
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  int fd, one = 1, rc, e;
  if (spec[0] == '[') {
    const char *close = strchr(spec, ']');
    if (!close || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof host)
      return tdm_error_set(err, "EINVAL", "bad listen address '%s' (want "
                           "HOST:PORT)", spec), -1;
    memcpy(host, spec + 1, (size_t)(close - spec - 1));
    host[close - spec - 1] = '\0';
    colon = close + 1;
  } else if ((colon = strrchr(spec, ':')) != NULL) {
    if ((size_t)(colon - spec) >= sizeof host)
      return tdm_error_set(err, "EINVAL", "bad listen address '%s'", spec), -1;
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
  } else {
    tdm_str_copy(host, sizeof host, "127.0.0.1");
    colon = spec - 1;
  }
  tdm_str_copy(port, sizeof port, colon + 1);
  if (port[0] == '\0' || port[strspn(port, "0123456789")] != '\0' ||
      strtol(port, NULL, 10) > 65535)
    return tdm_error_set(err, "EINVAL", "bad port in listen address '%s'",
                         spec), -1;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
  if (rc != 0)
    return tdm_error_set(err, "EINVAL", "listen address '%s': %s", spec,
                         gai_strerror(rc)), -1;
  fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    e = errno;
    freeaddrinfo(ai);
    return tdm_error_errno(err, e, "listen on %s", spec), -1;
  }
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
    e = errno;
    close(fd);
    freeaddrinfo(ai);
    return tdm_error_errno(err, e, "listen on %s", spec), -1;
  }
  freeaddrinfo(ai);
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
    char addr[INET6_ADDRSTRLEN] = "?";
    unsigned p = 0;
    if (ss.ss_family == AF_INET) {
      struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
      inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof addr);
      p = ntohs(s4->sin_port);
      snprintf(bound, boundsz, "%s:%u", addr, p);
    } else if (ss.ss_family == AF_INET6) {
      struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
      inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof addr);
      p = ntohs(s6->sin6_port);
      snprintf(bound, boundsz, "[%s]:%u", addr, p);
    }
  }
  return fd;
}

