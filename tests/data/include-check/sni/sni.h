// The public header of sni/.
#pragma once
#include "base/result.h"
