# Injected into every colcon CMake project with -DCMAKE_PROJECT_INCLUDE (see scripts/setup.sh).
#
# Why: the ROS 2 PyPI wheels export CMake targets whose INTERFACE_INCLUDE_DIRECTORIES name the
# wheel builder's interpreter (/opt/python/cp3XX-cp3XX/...), which does not exist here, and CMake
# refuses non-existent include paths. We rewrite those paths, inside this build only, to this
# interpreter's include dir and numpy's. Nothing outside the build tree is touched.
#
# The rewrite is deferred to the end of the top-level directory so that every imported target
# (created by find_package calls anywhere in the project) exists when we walk them.

if(NOT DEFINED _RLHF_FIX_WHEEL_INCLUDES)
  set(_RLHF_FIX_WHEEL_INCLUDES TRUE)

  function(_rlhf_fix_wheel_include_dirs)
    find_package(Python3 QUIET COMPONENTS Interpreter Development NumPy)
    if(NOT Python3_FOUND)
      return()
    endif()
    get_property(_targets DIRECTORY "${CMAKE_SOURCE_DIR}" PROPERTY IMPORTED_TARGETS)
    foreach(_t IN LISTS _targets)
      get_target_property(_incs ${_t} INTERFACE_INCLUDE_DIRECTORIES)
      if(NOT _incs)
        continue()
      endif()
      set(_new "")
      set(_changed FALSE)
      foreach(_inc IN LISTS _incs)
        if(_inc MATCHES "^/opt/python/[^/]+/include/python3" AND NOT EXISTS "${_inc}")
          list(APPEND _new "${Python3_INCLUDE_DIRS}")
          set(_changed TRUE)
        elseif(_inc MATCHES "^/opt/python/.*numpy.*/include" AND NOT EXISTS "${_inc}")
          list(APPEND _new "${Python3_NumPy_INCLUDE_DIRS}")
          set(_changed TRUE)
        else()
          list(APPEND _new "${_inc}")
        endif()
      endforeach()
      if(_changed)
        set_target_properties(${_t} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_new}")
      endif()
    endforeach()
  endfunction()

  cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _rlhf_fix_wheel_include_dirs)
endif()
