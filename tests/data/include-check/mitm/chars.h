// tollgate: internal to mitm/
#pragma once
