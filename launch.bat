@echo off
rem Voiceapp one-click launcher (Windows).
rem   launch.bat          create .venv when missing, install the pinned requirements, start the app
rem   launch.bat test     the same install (+ test extras), then run the whole test suite
rem With an NVIDIA GPU (nvidia-smi found) torch comes from the CUDA wheel index; set
rem VOICEAPP_TORCH_INDEX to choose another (e.g. https://download.pytorch.org/whl/cu126 for GTX 10xx cards).
setlocal EnableDelayedExpansion
cd /d "%~dp0"

set "MODE=app"
if /I "%~1"=="test" (
  set "MODE=test"
  shift
)
if "%PYTHON%"=="" set "PYTHON=py -3.11"

if not exist ".venv\Scripts\python.exe" (
  echo [voiceapp] creating .venv
  %PYTHON% -m venv .venv || python -m venv .venv || goto :fail
)
set "PY=.venv\Scripts\python.exe"

if "%VOICEAPP_TORCH_INDEX%"=="" (
  where nvidia-smi >nul 2>nul && set "VOICEAPP_TORCH_INDEX=https://download.pytorch.org/whl/cu128"
)
set "FILES=requirements.txt requirements-nodeps.txt"
if "%MODE%"=="test" set "FILES=%FILES% requirements-test.txt"
set "STAMPFILE=.venv\.voiceapp-%MODE%.stamp"
for /f "delims=" %%h in ('%PY% -c "import hashlib,sys; print(hashlib.sha256(b''.join(open(f,'rb').read() for f in sys.argv[1:])).hexdigest())" %FILES%') do set "STAMP=%%h-%VOICEAPP_TORCH_INDEX%"
set "OLD="
if exist "%STAMPFILE%" set /p OLD=<"%STAMPFILE%"
if not "!OLD!"=="!STAMP!" (
  echo [voiceapp] installing requirements ^(first run or requirements changed^)
  %PY% -m pip install --quiet --upgrade pip || goto :fail
  if not "%VOICEAPP_TORCH_INDEX%"=="" (
    for /f "delims=" %%t in ('findstr /b "torch==" requirements.txt') do %PY% -m pip install --quiet %%t --index-url %VOICEAPP_TORCH_INDEX% || goto :fail
  )
  %PY% -m pip install --quiet -r requirements.txt || goto :fail
  %PY% -m pip install --quiet --no-deps -r requirements-nodeps.txt || goto :fail
  if "%MODE%"=="test" %PY% -m pip install --quiet -r requirements-test.txt || goto :fail
  > "%STAMPFILE%" echo !STAMP!
)

if "%MODE%"=="test" (
  %PY% -m pytest tests %1 %2 %3 %4 %5 %6 %7 %8 %9
  exit /b !ERRORLEVEL!
)
%PY% app.py %1 %2 %3 %4 %5 %6 %7 %8 %9
exit /b !ERRORLEVEL!

:fail
echo [voiceapp] setup failed; see the messages above.
pause
exit /b 1
