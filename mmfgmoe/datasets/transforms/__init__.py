# Copyright (c) mmfgmoe contributors. All rights reserved.
