#include "ca/ca.h"
#include "ca/x509_util.h"  // expect-violation
#include "mitm/chars.h"
