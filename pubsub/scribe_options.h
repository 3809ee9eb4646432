// Forwarding header: ScribeOptions is public API, include/peter/pubsub/options.h.
#ifndef PETER_PUBSUB_SCRIBE_OPTIONS_H_
#define PETER_PUBSUB_SCRIBE_OPTIONS_H_

#include "peter/pubsub/options.h"

#endif  // PETER_PUBSUB_SCRIBE_OPTIONS_H_
