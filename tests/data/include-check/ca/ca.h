// The public header of ca/.
#pragma once
