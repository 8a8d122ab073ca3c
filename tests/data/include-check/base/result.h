// A public header of base/.
#pragma once
